"""The forecast endpoint: every documented case through FastAPI's TestClient, and a schemathesis run."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers.app import service
from helpers.forecast import artifact
from tests.support import artifact_payload, run_as_nobody

PAYLOAD = artifact_payload(n=30, models=("ets", "holt_winters", "ensemble"))


@pytest.fixture(scope="module")
def artifact_file(tmp_path_factory):
    return artifact.write_artifact(tmp_path_factory.mktemp("model") / "forecast_artifact.json", PAYLOAD)


@pytest.fixture(scope="module")
def client(artifact_file):
    with TestClient(service.create_app(artifact_file)) as client:
        yield client


def predict(client, **body):
    return client.post("/predict", json={"start_date": "2015-01-01", "end_date": "2015-01-14", **body})


def test_predict_slices_the_artifact_and_reports_its_cv_metrics(client):
    response = predict(client, model="ensemble", include_confidence=True)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    forecast = PAYLOAD["models"]["ensemble"]["forecast"]
    assert body["dates"] == [f"2015-01-{d:02d}" for d in range(1, 15)]
    assert body["forecast"] == forecast["mean"][:14]
    assert body["confidence_lower"] == forecast["lo-95"][:14]
    assert body["confidence_upper"] == forecast["hi-95"][:14]
    assert body["confidence_lower_80"] == forecast["lo-80"][:14]
    assert body["confidence_upper_80"] == forecast["hi-80"][:14]
    assert body["model_used"] == "ensemble"
    assert (body["rmse"], body["mae"]) == (12.0, 10.0)
    assert body["last_updated"] == PAYLOAD["created_utc"]


def test_predict_defaults_to_the_selected_model_and_can_leave_out_intervals(client):
    body = client.post("/predict", json={"start_date": "2015-01-30", "end_date": "2015-01-30",
                                         "include_confidence": False}).json()
    assert body["model_used"] == "ets"
    assert body["dates"] == ["2015-01-30"] and body["forecast"] == [129.0]
    assert body["confidence_lower"] is None and body["confidence_upper"] is None


@pytest.mark.parametrize("body, message", [
    ({"start_date": "2015-13-01", "end_date": "2015-01-14"}, "start_date: .*expected an ISO 8601 day"),
    ({"start_date": "2015-01-01"}, "end_date: Field required"),
    ({"start_date": "2015-01-14", "end_date": "2015-01-01"}, "start_date 2015-01-14 is after end_date 2015-01-01"),
    ({"start_date": "2014-12-31", "end_date": "2015-01-02"}, r"outside the forecastable window 2015-01-01\.\.2015-01-30"),
    ({"start_date": "2015-01-01", "end_date": "2015-02-01"}, "outside the forecastable window"),
    ({"start_date": "2015-01-01", "end_date": "2015-01-02", "model": "xgboost"},
     "unknown model 'xgboost'; allowed: ensemble, ets, holt_winters"),
    ({"start_date": "2015-01-01", "end_date": "2015-01-02", "model": 3}, "model: .*valid string"),
    ({"start_date": "2015-01-01", "end_date": "2015-01-02", "include_confidence": "maybe"},
     "include_confidence: .*expected true or false"),
    ({"start_date": "2015-01-01", "end_date": "2015-01-02", "horizon": 7}, "unknown field 'horizon'; allowed fields"),
    ([1, 2], "request body: .*expected a JSON object"),
])
def test_bad_requests_get_422_saying_what_is_allowed(client, body, message):
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert list(response.json()) == ["detail"]
    assert re.search(message, response.json()["detail"]), response.json()["detail"]


def test_malformed_json_is_a_422_not_a_500(client):
    response = client.post("/predict", content=b'{"start_date": ', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]


def test_models_lists_metrics_and_the_forecastable_range(client):
    body = client.get("/models").json()
    assert body["selected_model"] == "ets"
    assert body["forecastable"] == {"start_date": "2015-01-01", "end_date": "2015-01-30"}
    by_name = {m["name"]: m for m in body["models"]}
    assert set(by_name) == {"ets", "holt_winters", "ensemble"}
    assert by_name["ensemble"]["members"] == ["ets", "holt_winters"]
    assert by_name["holt_winters"]["rmse"] == 11.0 and by_name["ets"]["selected"]
    # Nominal against achieved coverage of the served, the calibrated and the models' own intervals.
    assert by_name["ets"]["intervals"] == {
        "80": {"nominal": 0.8, "achieved": 0.78, "calibrated": 0.7, "uncalibrated": 0.9, "method": "scaled", "factor": 0.7},
        "95": {"nominal": 0.95, "achieved": 0.94, "calibrated": 0.9, "uncalibrated": 0.99, "method": "scaled", "factor": 0.8}}


def test_health_names_the_served_artifact_and_counts_the_forecast_log(client, artifact_file):
    body = client.get("/health").json()
    log, source = body.pop("forecast_log"), body.pop("model_source")
    assert body == {"status": "ok", "artifact": str(artifact_file), "series_id": "s", "selected_model": "ets",
                    "last_updated": PAYLOAD["created_utc"], "served_version": None}
    assert (source["mode"], source["follows"], source["served"]) == ("file", str(artifact_file), str(artifact_file))
    assert source["last_refusal"] is None and source["last_check_error"] is None
    assert log["dropped_rows"] == 0 and log["last_error"] is None
    assert log["dir"] == os.environ["HELPERS_FORECAST_LOG_DIR"]  # the test session's, from the settings


@pytest.fixture
def logged(artifact_file, tmp_path):
    """A client whose forecast log goes to a folder of its own (flushed by GET /predictions only)."""
    with TestClient(service.create_app(artifact_file, forecast_log_dir=tmp_path / "log", flush_seconds=600)) as client:
        yield client


def test_predictions_returns_what_predict_served(logged):
    served = [predict(logged, model="ensemble").json(),
              logged.post("/predict", json={"start_date": "2015-01-10", "end_date": "2015-01-11",
                                            "include_confidence": False}).json()]
    body = logged.get("/predictions").json()
    assert body["snapshot_utc"] is None and body["count"] == 16  # nothing folded yet
    rows = body["predictions"]
    assert [r["target_date"] for r in rows] == sorted(served[0]["dates"] + served[1]["dates"])
    for answer in served:
        mine = [r for r in rows if r["model"] == answer["model_used"]]
        assert [r["target_date"] for r in mine] == answer["dates"]
        assert [r["forecast"] for r in mine] == answer["forecast"]
        assert {r["source"] for r in mine} == {"api"} and {r["actual"] for r in mine} == {None}
        assert {r["model_version"] for r in mine} == {PAYLOAD["created_utc"]}
        assert {r["fitted_until"] for r in mine} == {"2014-12-31"}
        assert [r["horizon_step"] for r in mine] == [int(d[-2:]) for d in answer["dates"]]
    ensemble = [r for r in rows if r["model"] == "ensemble"]
    assert [r["lower_95"] for r in ensemble] == served[0]["confidence_lower"]
    assert [r["upper_95"] for r in ensemble] == served[0]["confidence_upper"]
    assert len({r["prediction_id"] for r in rows}) == 16
    window = logged.get("/predictions", params={"start_date": "2015-01-11", "end_date": "2015-01-14"}).json()
    assert [(r["target_date"], r["model"]) for r in window["predictions"]] == [
        ("2015-01-11", "ensemble"), ("2015-01-11", "ets"), ("2015-01-12", "ensemble"), ("2015-01-13", "ensemble"),
        ("2015-01-14", "ensemble")]
    assert logged.get("/predictions", params={"source": "scheduled"}).json()["count"] == 0
    assert logged.get("/predictions", params={"source": "api", "end_date": "2015-01-01"}).json()["count"] == 1
    assert logged.get("/health").json()["forecast_log"]["written_rows"] == 16


def test_predictions_after_a_fold_come_with_their_actual_values_and_the_scheduled_ones(logged, tmp_path):
    from helpers.operate.forecast_log import artifact_forecasts, fold_logs, log_scheduled, write_predictions_snapshot
    from helpers.warehouse import Warehouse
    from tests.support import add_actuals

    served = logged.post("/predict", json={"start_date": "2015-01-01", "end_date": "2015-01-02"}).json()
    before = logged.get("/predictions").json()["predictions"]
    logged.app.state.log.rotate()  # as the flusher does every rotate_seconds
    with Warehouse.open("duckdb", tmp_path / "warehouse.duckdb") as warehouse:
        add_actuals(warehouse, "s", {"2015-01-01": 97.5})
        assert fold_logs(warehouse, tmp_path / "log") == 2
        log_scheduled(warehouse, artifact_forecasts(PAYLOAD, issued_at="2026-01-02"))
        write_predictions_snapshot(warehouse, tmp_path / "log" / "predictions.json")
    body = logged.get("/predictions", params={"end_date": "2015-01-02"}).json()
    assert body["snapshot_utc"] and body["count"] == 8  # 2 served, 3 models x 2 days scheduled
    api = logged.get("/predictions", params={"end_date": "2015-01-02", "source": "api"}).json()["predictions"]
    assert api == [row | {"actual": 97.5 if row["target_date"] == "2015-01-01" else None} for row in before]
    assert [r["forecast"] for r in api] == served["forecast"]
    scheduled = logged.get("/predictions", params={"source": "scheduled", "start_date": "2015-01-30"}).json()
    assert {(r["model"], r["horizon_step"]) for r in scheduled["predictions"]} == {
        ("ets", 30), ("holt_winters", 30), ("ensemble", 30)}


def test_the_dashboards_requests_are_logged_as_webapp_both_ways(logged):
    """``X-Request-Source: webapp`` (the dashboard) is logged as source webapp, on the direct path
    and through FastAPI's (a body with the fields in another form takes that one)."""
    webapp = {"X-Request-Source": "webapp"}
    direct = logged.post("/predict", json={"start_date": "2015-01-01", "end_date": "2015-01-02"}, headers=webapp)
    routed = logged.post("/predict", content=b'{"start_date": "2015-01-03", "end_date": "2015-01-03", "model": null}',
                         headers={**webapp, "content-type": "application/json; charset=utf-8"})
    named_api = logged.post("/predict", json={"start_date": "2015-01-04", "end_date": "2015-01-04"},
                            headers={"X-Request-Source": "api"})
    assert direct.status_code == routed.status_code == named_api.status_code == 200
    assert direct.json()["confidence_lower_80"] == PAYLOAD["models"]["ets"]["forecast"]["lo-80"][:2]
    mine = logged.get("/predictions", params={"source": "webapp"}).json()["predictions"]
    assert [(r["target_date"], r["source"]) for r in mine] == [
        ("2015-01-01", "webapp"), ("2015-01-02", "webapp"), ("2015-01-03", "webapp")]
    api = logged.get("/predictions", params={"source": "api"}).json()["predictions"]
    assert [r["target_date"] for r in api] == ["2015-01-04"]
    health = logged.get("/health").json()["forecast_log"]
    assert health["written_rows"] == 4
    assert (health["by_source"]["webapp"]["written_rows"], health["by_source"]["api"]["written_rows"]) == (3, 1)


@pytest.mark.parametrize("value", ["dashboard", "WEBAPP", ""])
def test_an_unknown_request_source_is_a_422_naming_the_allowed_ones(client, value):
    response = client.post("/predict", json={"start_date": "2015-01-01", "end_date": "2015-01-02"},
                           headers={"X-Request-Source": value})
    assert response.status_code == 422
    assert re.search(r"x-request-source: .*expected one of api, webapp \(the header X-Request-Source",
                     response.json()["detail"]), response.json()["detail"]


def test_stopping_the_service_closes_its_log_file_for_the_fold(artifact_file, tmp_path):
    with TestClient(service.create_app(artifact_file, forecast_log_dir=tmp_path, flush_seconds=600)) as client:
        predict(client)
    (closed,) = tmp_path.glob("*.jsonl")
    assert len(closed.read_bytes().splitlines()) == 1 and not list(tmp_path.glob("*.open"))


@pytest.mark.parametrize("query, message", [
    ({"start_date": "2015-02-30"}, "start_date: .*expected an ISO 8601 day"),
    ({"end_date": "yesterday"}, "end_date: .*expected an ISO 8601 day"),
    ({"start_date": "2015-01-14", "end_date": "2015-01-01"}, "start_date 2015-01-14 is after end_date 2015-01-01"),
    ({"source": "web"}, "source: .*expected one of api, scheduled, webapp, all"),
    ({"sorce": "api"}, "unknown query parameter 'sorce'; allowed: start_date, end_date, source"),
])
def test_bad_prediction_queries_get_422_saying_what_is_allowed(client, query, message):
    response = client.get("/predictions", params=query)
    assert response.status_code == 422
    assert list(response.json()) == ["detail"]
    assert re.search(message, response.json()["detail"]), response.json()["detail"]


def test_a_log_that_cannot_be_written_never_fails_a_request(artifact_file, tmp_path, capfd):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the log folder should be: no user, root included, can write there
    with TestClient(service.create_app(artifact_file, forecast_log_dir=blocked / "log", flush_seconds=600)) as client:
        assert predict(client).status_code == 200
        assert client.get("/predictions").json() == {"snapshot_utc": None, "count": 0, "predictions": []}
        log = client.get("/health").json()["forecast_log"]
    assert log["dropped_rows"] == 14 and log["last_error"].startswith("NotADirectoryError")
    assert "forecast log: cannot write to" in capfd.readouterr().err


def test_no_artifact_refuses_to_start_naming_the_build_command(tmp_path, capsys):
    with pytest.raises(artifact.ArtifactError, match="make run"):
        with TestClient(service.create_app(tmp_path / "absent.json")):
            pass
    assert service.main(["--artifact", str(tmp_path / "absent.json")]) == 2
    assert "no forecast artifact" in capsys.readouterr().err


def test_corrupt_artifact_is_refused(tmp_path, capsys):
    path = tmp_path / "forecast_artifact.json"
    path.write_text(json.dumps(PAYLOAD)[:-20])
    assert service.main(["--artifact", str(path)]) == 2
    assert "corrupt JSON" in capsys.readouterr().err


@pytest.fixture
def shared_dir():
    """A folder every user may enter (pytest's temp folders are private to their owner)."""
    path = Path(tempfile.mkdtemp(prefix="helpers-shared-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can run the service as another user")
def test_a_service_running_as_another_user_reads_the_artifact_a_build_wrote(shared_dir):
    """The artifact had the temporary file's mode 0600: another user's service died on a PermissionError."""
    old = os.umask(0o022)
    try:
        path = artifact.write_artifact(shared_dir / "forecast_artifact.json", PAYLOAD)
    finally:
        os.umask(old)
    code, err = run_as_nobody(lambda: len(service.Forecasts.load(path).models))
    assert (code, err) == (3, "")


def test_an_artifact_the_service_may_not_read_is_refused_with_a_sentence(shared_dir):
    path = artifact.write_artifact(shared_dir / "forecast_artifact.json", PAYLOAD)
    if os.geteuid() == 0:  # root reads anything: the service runs as nobody, the file is root's alone
        path.chmod(0o600)
        code, err = run_as_nobody(lambda: service.main(["--artifact", str(path)]))
    else:
        path.chmod(0o000)
        code, err = service.main(["--artifact", str(path)]), ""
    err = err or ""
    assert code == 2, err
    assert "Traceback" not in err
    assert f"error: cannot serve forecasts: {path} cannot be read: permission denied (the file belongs to " in err
    assert f"make it readable with `chmod a+r {path}` or run as its owner (`make run` writes a new one)." in err


def test_a_folder_given_as_the_artifact_is_refused_with_a_sentence(tmp_path, capsys):
    assert service.main(["--artifact", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"error: cannot serve forecasts: {tmp_path} is a folder, not a file; give "
                                       "the path of the file itself (`make run` writes a new one).\n")


def test_a_path_with_a_missing_day_is_refused(tmp_path):
    payload = artifact_payload(n=5)
    payload["models"]["a"]["forecast"]["ds"][2:] = ["2015-01-04T00:00:00", "2015-01-05T00:00:00", "2015-01-06T00:00:00"]
    path = artifact.write_artifact(tmp_path / "a.json", payload)
    with pytest.raises(artifact.ArtifactError, match="consecutive day"):
        service.Forecasts.load(path)


def test_default_artifact_follows_the_environment_then_the_settings(monkeypatch, tmp_path, clean_env):
    assert service.default_artifact().parts[-3:] == ("products", "model", "forecast_artifact.json")
    monkeypatch.setenv(service.ARTIFACT_ENV, str(tmp_path / "x.json"))
    assert service.default_artifact() == tmp_path / "x.json"


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_generated_request_causes_a_server_error(artifact_file, mode):
    """schemathesis generates requests from the OpenAPI schema, valid ones and invalid ones."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.generation import GenerationMode

    app = service.create_app(artifact_file)
    with TestClient(app):  # runs the lifespan, so the artifact is loaded
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        statuses = set()

        @given(case=schema.as_strategy(generation_mode=GenerationMode(mode)))
        @settings(max_examples=150, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call()
            statuses.add(response.status_code)
            case.validate_response(response, checks=[schemathesis.checks.not_a_server_error])

        check()
    assert statuses and max(statuses) < 500
    assert 422 in statuses  # generated input did reach the validation paths


def test_a_body_over_the_limit_gets_413_and_the_app_never_sees_it(artifact_file):
    with TestClient(service.create_app(artifact_file, max_request_bytes=1024)) as client:
        small = predict(client)
        assert small.status_code == 200
        padded = {"start_date": "2015-01-01", "end_date": "2015-01-02", "model": "ets" + " " * 2000}
        declared = client.post("/predict", content=json.dumps(padded).encode(),
                               headers={"content-type": "application/json"})
        streamed = client.post("/predict", content=iter([b'{"start_date": "', b"9" * 1000, b"9" * 1000]),
                               headers={"content-type": "application/json"})  # no Content-Length: chunked
    assert declared.status_code == 413 and declared.headers["connection"] == "close"
    assert declared.json()["detail"] == (f"request body too large: the limit is 1024 bytes (max_request_bytes), this "
                                         f"one is {len(json.dumps(padded))} bytes; POST /predict takes a JSON object "
                                         "of a few hundred bytes")
    assert streamed.status_code == 413
    assert "this one is more than that (counted as it arrived)" in streamed.json()["detail"]


def _status(path: str) -> dict[str, int]:
    """Resident and peak resident memory (kB) of a process, from /proc/<pid>/status."""
    lines = Path(path).read_text().splitlines()
    return {key: int(line.split()[1]) for line in lines for key in ("VmRSS", "VmHWM") if line.startswith(key + ":")}


def _post_raw(port: int, body: bytes, chunked: bool) -> bytes:
    """POST ``body`` over a raw socket while reading the answer, as a client that keeps sending
    after the server has answered; returns the answer's status line."""
    import socket
    import threading

    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = f"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{framing}\r\n\r\n".encode()

    def write() -> None:
        try:
            sock.sendall(head)
            for i in range(0, len(body), 1 << 16):
                piece = body[i:i + (1 << 16)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server closed the connection after its 413: the rest is not read
            pass

    writer = threading.Thread(target=write)
    writer.start()
    answer = b""
    try:
        while b"\r\n" not in answer:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            answer += chunk
    finally:
        writer.join(30)
        sock.close()
    return answer.split(b"\r\n", 1)[0]


@pytest.fixture(scope="module")
def server(artifact_file):
    """``python -m helpers.app.service`` (uvicorn, uvloop, httptools) on a free loopback port."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "helpers.app.service", "--artifact", str(artifact_file),
                                "--port", str(port)], env={**os.environ, "HELPERS_MAX_REQUEST_BYTES": "4096"})
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_10_mb_body_gets_413_from_the_real_server_and_its_memory_stays_flat(server, chunked):
    """The 10 MB body was read whole (then refused with a 422): the server's peak memory grew by
    about 30 MB per request; a 300 MB body took the service to 1.3 GB."""
    port, pid = server
    assert _post_raw(port, b'{"start_date": "2015-01-01", "end_date": "2015-01-02"}', chunked) == b"HTTP/1.1 200 OK"
    assert _post_raw(port, b'{"model": "' + b"x" * 5000 + b'"}', chunked).startswith(b"HTTP/1.1 413")  # the setting
    before = _status(f"/proc/{pid}/status")
    body = b'{"start_date": "' + b"9" * (10 << 20) + b'"}'
    for _ in range(3):
        assert _post_raw(port, body, chunked).startswith(b"HTTP/1.1 413")
    after = _status(f"/proc/{pid}/status")
    assert after["VmHWM"] - before["VmHWM"] < 4 << 10, (before, after)  # kB: under 4 MB for 30 MB sent


# -- the direct path of POST /predict (ForecastService) ----------------------------------------
JSON = {"content-type": "application/json"}
ORDINARY = [
    b'{"start_date": "2015-01-01", "end_date": "2015-01-14", "model": "ensemble", "include_confidence": true}',
    b'{"start_date": "2015-01-30", "end_date": "2015-01-30", "include_confidence": false}',
    b'{"end_date": "2015-01-30", "start_date": "2015-01-01", "model": null}',
    b'{"start_date":"2015-01-05","end_date":"2015-01-09","model":"holt_winters"}',
    b'\n  {\n "start_date" : "2015-01-02",\n "end_date" : "2015-01-02"\n }\n',
    b'{"start_date": "2014-01-01", "start_date": "2015-01-03", "end_date": "2015-01-04"}',  # the last one counts
]
UNUSUAL = [  # bodies the direct path hands to FastAPI, which answers them (pydantic takes some: 200)
    b'{"start_date": "2015-01-02T00:00:00", "end_date": "2015-01-03"}',
    b'{"start_date": "20150102", "end_date": "2015-01-03"}',
    b'{"start_date": "2015-1-2", "end_date": "2015-01-03"}',
    b'{"start_date": 1420156800, "end_date": "2015-01-03"}',
    b'{"start_date": "2015-01-02", "end_date": "2015-01-03", "include_confidence": "true"}',
    b'{"start_date": "2015-01-02", "end_date": "2015-01-03", "include_confidence": 1}',
    b'{"start_date": "2015-01-02", "end_date": "2015-01-03", "include_confidence": null}',
    b'{"start_date": "2015-01-02", "end_date": "2015-01-03", "model": ""}',
    b'{"start_date": "2015-01-02", "end_date": "2015-01-03", "model": "' + b"e" * 101 + b'"}',
    b'{"start_date": "2015-01-02", "end_date": "2015-01-03", "model": ["ets"]}',
    b'{"start_date": "2015-01-03", "end_date": "2015-01-02"}',
    b'{"start_date": "2014-12-31", "end_date": "2015-01-02"}',
    b'{"start_date": "2015-01-02", "end_date": "2015-02-30"}',
    b'{"start_date": "2015-01-02", "end_date": "2015-01-03", "horizon": 7}',
    b'{"start_date": "2015-01-02"}',
    b'{}', b'[]', b'"2015-01-02"', b'null', b'{"start_date": ', b'', b'{"start_date": NaN}',
    b'{"start_date": "2015-01-02", "end_date": "2015-01-03"} trailing',
]


def _both_ways(client, body: bytes, headers: dict[str, str]):
    """The answer of the direct path and of FastAPI's (the direct path off) to one request."""
    app = client.app
    answers = []
    for direct in (True, False):
        app.direct = direct
        try:
            answers.append(client.post("/predict", content=body, headers=headers))
        finally:
            app.direct = True
    return answers


@pytest.mark.parametrize("body", ORDINARY + UNUSUAL)
def test_the_direct_path_answers_every_body_as_fastapi_does(client, body):
    direct, fastapi = _both_ways(client, body, JSON)
    assert (direct.status_code, direct.content) == (fastapi.status_code, fastapi.content)
    assert direct.headers["content-type"] == fastapi.headers["content-type"]
    assert direct.headers["content-length"] == fastapi.headers["content-length"]
    assert direct.status_code == 200 if body in ORDINARY else direct.status_code in (200, 422), direct.content
    try:
        declined = client.app.check(body) is None
    except Exception:  # noqa: BLE001 - the direct path catches it and hands the body on
        declined = True
    assert declined == (body not in ORDINARY)


@pytest.mark.parametrize("headers", [
    {"content-type": "application/json; charset=utf-8"}, {"content-type": "application/vnd.api+json"},
    {"content-type": "text/plain"}, {"content-type": "Application/JSON"}, {},
])
def test_other_content_types_go_through_fastapi(client, headers):
    direct, fastapi = _both_ways(client, ORDINARY[0], headers)
    assert (direct.status_code, direct.content) == (fastapi.status_code, fastapi.content)


def test_every_day_range_of_every_model_is_the_same_both_ways(client):
    days = [f"2015-01-{d:02d}" for d in range(1, 31)]
    for model in ("ets", "holt_winters", "ensemble"):
        for start in days[::4]:
            for end in days[days.index(start)::5]:
                body = json.dumps({"start_date": start, "end_date": end, "model": model}).encode()
                direct, fastapi = _both_ways(client, body, JSON)
                assert direct.status_code == 200 and direct.content == fastapi.content, (model, start, end)


def test_an_ordinary_request_never_reaches_fastapi(client, monkeypatch):
    from fastapi import FastAPI

    async def refuse(self, scope, receive, send):
        raise AssertionError(f"{scope['method']} {scope['path']} went through FastAPI")

    monkeypatch.setattr(FastAPI, "__call__", refuse)
    response = client.post("/predict", content=ORDINARY[0], headers=JSON)
    assert response.status_code == 200 and response.json()["model_used"] == "ensemble"


def test_the_direct_path_is_off_when_fastapi_telemetry_is_on(artifact_file, monkeypatch):
    from fastapi.telemetry._asgi import NativeTelemetry

    monkeypatch.setattr(NativeTelemetry, "enabled", lambda self: True)
    app = service.create_app(artifact_file)
    with TestClient(app):
        assert app.direct is False
    monkeypatch.undo()
    with TestClient(app) as client:
        assert app.direct is True and predict(client).status_code == 200


def test_answers_are_kept_for_the_most_recently_used_ranges_only(artifact_file, monkeypatch):
    monkeypatch.setattr(service, "ANSWER_CACHE", 3)
    app = service.create_app(artifact_file)
    with TestClient(app) as client:
        first = predict(client, model="ets").content
        for day in ("02", "03", "04", "05"):
            assert predict(client, model="ets", end_date=f"2015-01-{day}").status_code == 200
        predict(client, model="ets", end_date="2015-01-03")  # used again: the most recent
        answers = app.state.forecasts.answers
        assert list(answers) == [("ets", 0, 4, True), ("ets", 0, 5, True), ("ets", 0, 3, True)]
        assert predict(client, model="ets").content == first  # evicted, made again the same
    with TestClient(app):  # a new start loads the artifact again, with no answer kept
        assert app.state.forecasts.answers == {}


class _Transport:
    """What a socket's transport is to :class:`service.OneWrite`: the writes it was given."""

    def __init__(self) -> None:
        self.writes, self.closed, self.closing = [], False, False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing or self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default=None):
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def test_one_write_sends_what_one_loop_iteration_wrote_in_one_write():
    import asyncio

    async def scenario():
        raw = _Transport()
        transport = service.OneWrite(raw, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"{}")
        assert raw.writes == [] and transport.get_write_buffer_size() == 21
        await asyncio.sleep(0)
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
        transport.write(b"a")
        transport.writelines([b"b", b"c"])
        transport.close()  # flushes first
        assert raw.writes[1:] == [b"abc"] and raw.closed
        assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
        gone = _Transport()
        transport = service.OneWrite(gone, asyncio.get_running_loop())
        transport.write(b"late")
        gone.closing = True  # the peer went away before the flush
        await asyncio.sleep(0)
        assert gone.writes == []

    asyncio.run(scenario())


def test_the_real_server_answers_as_the_app_over_one_connection(server, client):
    import http.client

    port, _ = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for body in (ORDINARY[0], UNUSUAL[10], ORDINARY[1], b'{"start_date": ', ORDINARY[0]):
            connection.request("POST", "/predict", body, JSON)
            response = connection.getresponse()
            served = response.read()
            expected = client.post("/predict", content=body, headers=JSON)
            assert (response.status, served) == (expected.status_code, expected.content)
            assert response.getheader("content-length") == str(len(served))
            assert response.getheader("content-type") == "application/json"
        connection.request("GET", "/health")
        assert http.client.HTTPConnection.getresponse(connection).status == 200
    finally:
        connection.close()


def test_the_service_process_freezes_what_it_loaded_for_the_garbage_collector(artifact_file):
    """Only with freeze_gc (main): a full collection then walks what requests left, not the whole
    heap; the test process itself is never frozen."""
    import gc
    import subprocess
    import sys

    script = ("import gc, sys; from fastapi.testclient import TestClient; from helpers.app import service; "
              "app = service.create_app(sys.argv[1], freeze_gc=sys.argv[2] == '1'); "
              "before = gc.get_freeze_count(); client = TestClient(app).__enter__(); "
              "print(before, gc.get_freeze_count(), client.post('/predict', json={'start_date': '2015-01-01', "
              "'end_date': '2015-01-02'}).status_code)")
    counts = {}
    for freeze in ("0", "1"):
        done = subprocess.run([sys.executable, "-c", script, str(artifact_file), freeze], capture_output=True,
                              text=True, timeout=120, env=os.environ)
        assert done.returncode == 0, done.stderr
        counts[freeze] = [int(x) for x in done.stdout.split()]
    assert counts["0"][:2] == [0, 0] and counts["0"][2] == 200
    assert counts["1"][0] == 0 and counts["1"][1] > 10_000 and counts["1"][2] == 200
    assert gc.get_freeze_count() == 0
