"""The service follows what it serves: a replaced file, a promotion and a rollback switch every
request to the new model without a failed request; a corrupt or incompatible one is refused.

The switches under load run against a real uvicorn (uvloop, httptools, as ``make serve``) on
127.0.0.1 in a thread of the test, with client threads posting /predict throughout.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from helpers.app import model_source, service
from helpers.core.files import write_atomic
from helpers.forecast import artifact
from tests.support import artifact_payload, wait_until

MODELS = ("ets", "holt_winters", "ensemble")
POLL = 0.02  # seconds: the follower's checks in these tests


def payload(created: str, shift: float = 0.0, series: str = "s", n: int = 30) -> dict:
    """A valid artifact made at ``created`` whose forecasts and metrics are moved by ``shift``."""
    p = artifact_payload(n=n, models=MODELS)
    p["created_utc"], p["series_id"] = created, series
    for model in p["models"].values():
        model["cv"]["rmse"] += shift
        model["cv"]["mae"] += shift
        for key in artifact.PATH_KEYS[1:]:
            model["forecast"][key] = [v + shift for v in model["forecast"][key]]
    return p


@contextmanager
def serving(app) -> Iterator[int]:
    """``app`` on uvicorn (uvloop, the service's httptools protocol) on a free loopback port, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, loop="uvloop", http=service.http_protocol(), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), what="uvicorn's start")
        assert server.started, "uvicorn did not start"
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def get(port: int, path: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


class Hammer:
    """Client threads posting random /predict requests over keep-alive connections until stopped;
    every answer (or error) is kept with its request."""

    def __init__(self, port: int, clients: int = 3) -> None:
        self.port, self.stop = port, threading.Event()
        self.answers: list[tuple[dict, int, bytes]] = []
        self.by_client: dict[int, list[str]] = {}  # the artifacts each client was answered from, in order
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self.client, args=(k,), daemon=True) for k in range(clients)]

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            while not self.stop.is_set():
                start = rng.randint(1, 30)
                body = {"start_date": f"2015-01-{start:02d}", "end_date": f"2015-01-{rng.randint(start, 30):02d}",
                        "model": rng.choice(MODELS), "include_confidence": rng.random() < 0.7}
                try:
                    connection.request("POST", "/predict", json.dumps(body), {"content-type": "application/json"})
                    response = connection.getresponse()
                    content = response.read()
                    self.answers.append((body, response.status, content))
                    if response.status == 200:
                        self.by_client.setdefault(seed, []).append(json.loads(content)["last_updated"])
                except (OSError, http.client.HTTPException) as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        finally:
            connection.close()

    def __enter__(self) -> "Hammer":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def served(self) -> list[list[str]]:
        """Per client, the artifacts (created_utc) it was answered from, in order, repeats collapsed.
        (A client's requests follow one another; across clients an answer of the old model
        may arrive after one of the new.)"""
        return [[made for k, made in enumerate(seen) if k == 0 or seen[k - 1] != made]
                for seen in self.by_client.values()]

    def wait_for(self, created: str, answers: int = 50) -> None:
        """Until ``answers`` more answers have come from the artifact made at ``created``."""
        def enough() -> bool:
            return sum(1 for _, s, c in list(self.answers) if s == 200 and json.loads(c)["last_updated"] == created) \
                >= answers
        wait_until(enough, what=f"{answers} answers from {created}")


def in_order(hammer: Hammer, switches: list[str]) -> None:
    """Each client saw the models in the order they were switched to, never going back."""
    for seen in hammer.served():
        assert any(switches[k:k + len(seen)] == seen for k in range(len(switches))), (seen, switches)


def check_every_answer(answers: list[tuple[dict, int, bytes]], payloads: list[dict]) -> None:
    """Each answer is a 200 computed entirely from one of ``payloads``: the one its
    ``last_updated`` names gives every number in it."""
    by_created = {p["created_utc"]: p for p in payloads}
    for request, status, content in answers:
        assert status == 200, (request, status, content)
        body = json.loads(content)
        p = by_created[body["last_updated"]]
        model = p["models"][request["model"]]
        i, j = int(request["start_date"][-2:]) - 1, int(request["end_date"][-2:])
        path = model["forecast"]
        expected = {"dates": [d[:10] for d in path["ds"][i:j]], "forecast": path["mean"][i:j],
                    "confidence_lower": path["lo-95"][i:j] if request["include_confidence"] else None,
                    "confidence_upper": path["hi-95"][i:j] if request["include_confidence"] else None,
                    "confidence_lower_80": path["lo-80"][i:j] if request["include_confidence"] else None,
                    "confidence_upper_80": path["hi-80"][i:j] if request["include_confidence"] else None,
                    "model_used": request["model"], "rmse": model["cv"]["rmse"], "mae": model["cv"]["mae"],
                    "last_updated": p["created_utc"]}
        assert body == expected, (request, body)


# -- file mode ---------------------------------------------------------------------------------
def test_replacing_the_file_switches_every_request_to_the_new_model_without_a_failure(tmp_path):
    path = tmp_path / "forecast_artifact.json"
    versions = [payload("2026-01-01T00:00:00"), payload("2026-01-08T00:00:00", 1000.0),
                payload("2026-01-15T00:00:00", 2000.0)]
    artifact.write_artifact(path, versions[0])
    app = service.create_app(path, poll_seconds=POLL, forecast_log_dir=tmp_path / "log")
    with serving(app) as port, Hammer(port) as hammer:
        hammer.wait_for(versions[0]["created_utc"])
        for new in versions[1:]:
            artifact.write_artifact(path, new)  # renamed over the old file, as the pipeline writes it
            hammer.wait_for(new["created_utc"])
        health = get(port, "/health")
    assert hammer.errors == []
    in_order(hammer, [v["created_utc"] for v in versions])
    check_every_answer(hammer.answers, versions)
    assert len(hammer.answers) >= 150
    assert health["last_updated"] == versions[2]["created_utc"] and health["served_version"] is None
    assert health["model_source"]["mode"] == "file" and health["model_source"]["last_refusal"] is None
    # the forecast log recorded each answer under the artifact that gave it
    log_versions = {json.loads(line)["model_version"] for f in (tmp_path / "log").glob("*.jsonl")
                    for line in f.read_text().splitlines()}
    assert log_versions == {v["created_utc"] for v in versions}


@pytest.fixture
def followed(tmp_path):
    """A client of the service following ``tmp_path / forecast_artifact.json`` (made at 2026-01-01)."""
    path = tmp_path / "forecast_artifact.json"
    artifact.write_artifact(path, payload("2026-01-01T00:00:00"))
    with TestClient(service.create_app(path, poll_seconds=POLL, log_forecasts=False)) as client:
        yield client, path


def served(client) -> str:
    return client.post("/predict", json={"start_date": "2015-01-01", "end_date": "2015-01-02"}).json()["last_updated"]


def refusal(client) -> dict:
    return wait_until(lambda: client.get("/health").json()["model_source"]["last_refusal"], what="a refusal")


@pytest.mark.parametrize("write, reason", [
    (lambda path: write_atomic(path, json.dumps(payload("2026-02-01T00:00:00"))[:-30]), "corrupt JSON"),
    (lambda path: artifact.write_artifact(path, payload("2026-02-01T00:00:00", series="other")),
     "it forecasts series 'other' and the service serves series 's'; restart the service to serve another series"),
    (lambda path: artifact.write_artifact(path, {**payload("2026-02-01T00:00:00"), "frequency": "1h"}),
     "it forecasts frequency '1h' and the service serves frequency '1D'"),
    (lambda path: write_atomic(path, json.dumps({**payload("2026-02-01T00:00:00"), "models": {}})), "no models"),
], ids=["corrupt", "other-series", "other-frequency", "invalid"])
def test_a_corrupt_or_incompatible_file_is_refused_and_the_old_one_keeps_serving(followed, capfd, write, reason):
    client, path = followed
    write(path)
    refused = refusal(client)
    assert reason in refused["reason"] and refused["version"] is None and str(path) in refused["what"]
    assert served(client) == "2026-01-01T00:00:00"
    time.sleep(10 * POLL)  # more checks of the same file: refused once, said once
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("model source:")]
    assert len(lines) == 1 and lines[0].startswith(f"model source: refused {path} as modified at ")
    assert lines[0].endswith("; still serving " + f"{path} of 2026-01-01T00:00:00") and reason in lines[0]
    client.portal.call(client.app.state.model_source.wake)  # as on SIGHUP: the refused file is tried again
    wait_until(lambda: refusal(client)["at_utc"] != refused["at_utc"], what="a second refusal")
    artifact.write_artifact(path, payload("2026-03-01T00:00:00", 5.0))  # a good one is taken again
    wait_until(lambda: served(client) == "2026-03-01T00:00:00", what="the good artifact served")
    assert refusal(client)["what"] == refused["what"]  # the last refusal stays shown


def test_a_file_that_goes_away_keeps_the_old_one_serving(followed, capfd):
    client, path = followed
    path.unlink()
    error = wait_until(lambda: client.get("/health").json()["model_source"]["last_check_error"], what="a failed check")
    assert error == (f"no forecast artifact at {path}. Build it with `make run`; still serving {path} of "
                     "2026-01-01T00:00:00")
    assert served(client) == "2026-01-01T00:00:00"
    artifact.write_artifact(path, payload("2026-03-01T00:00:00"))
    wait_until(lambda: served(client) == "2026-03-01T00:00:00", what="the new artifact served")
    assert client.get("/health").json()["model_source"]["last_check_error"] is None
    err = capfd.readouterr().err
    assert err.count("model source: no forecast artifact") == 1 and f"model source: {path} can be read again" in err


def test_a_check_that_never_returns_holds_up_neither_requests_nor_the_shutdown(tmp_path):
    """The followed path replaced by a named pipe: reading it waits for a writer that never comes."""
    import os

    path = tmp_path / "forecast_artifact.json"
    artifact.write_artifact(path, payload("2026-01-01T00:00:00"))
    os.mkfifo(tmp_path / "pipe")
    with TestClient(service.create_app(path, poll_seconds=POLL, log_forecasts=False)) as client:
        os.replace(tmp_path / "pipe", path)
        time.sleep(10 * POLL)  # a check found the new file and waits in open()
        stuck = client.get("/health").json()["model_source"]["last_check_utc"]
        time.sleep(10 * POLL)
        assert client.get("/health").json()["model_source"]["last_check_utc"] == stuck  # the check is waiting
        assert served(client) == "2026-01-01T00:00:00"  # requests are not
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 2
    waiting = [t for t in threading.enumerate() if t.name == "model-source"]
    assert waiting and all(t.daemon for t in waiting)  # nor the exit of the process (Python joins others)
    with open(path, "w") as pipe:  # let the abandoned check end (it finds no JSON, and no loop to tell)
        pipe.write("{")


def test_models_shows_the_served_artifact_s_own_lineage_in_file_mode(followed):
    client, path = followed
    body = client.get("/models").json()
    assert body["served"] == {"version": None, "artifact": str(path), "lineage": {
        "created_utc": "2026-01-01T00:00:00", "training_start": "2014-01-01", "training_end": "2014-12-31",
        "data_sha256": "x" * 64, "git_commit": "abc"}}
    assert body["challenger"] is None
    assert body["selected_model"] == "ets" and len(body["models"]) == 3  # the fields clients used are kept


def test_an_artifact_named_by_the_environment_is_followed_as_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv(service.ARTIFACT_ENV, str(tmp_path / "a.json"))
    source = model_source.source_for()
    assert (source.mode, source.path) == ("file", tmp_path / "a.json")
    assert model_source.source_for(tmp_path / "b.json").path == tmp_path / "b.json"  # --artifact wins


def test_the_poll_interval_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="poll_seconds must be positive, got 0"):
        model_source.ModelFollower(model_source.FileSource(tmp_path / "a.json"), service.Forecasts.load, 0)


@contextmanager
def service_process(*args: str, stderr: Path, env: dict[str, str] | None = None
                    ) -> Iterator[tuple[int, "subprocess.Popen"]]:
    """``python -m helpers.app.service ARGS`` on a free loopback port (its stderr to the file
    ``stderr``), until it answers /health."""
    import os
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with stderr.open("w") as err:
        process = subprocess.Popen([sys.executable, "-m", "helpers.app.service", "--port", str(port), *args],
                                   env={**os.environ, **(env or {})}, stderr=err)
    try:
        def up() -> bool:
            assert process.poll() is None, stderr.read_text()
            try:
                return bool(get(port, "/health"))
            except OSError:
                return False
        wait_until(up, timeout=60, what="the service's start")
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- registry mode -----------------------------------------------------------------------------
NAME = "demand-forecast"
#: A check of a SQLite registry costs ~10 ms of CPU, in a thread beside the server's event loop
REGISTRY_POLL = 0.1
V1, V2 = payload("2026-01-01T00:00:00"), payload("2026-01-08T00:00:00", 1000.0)


@pytest.fixture(scope="module")
def store(tmp_path_factory, mlflow_store_db):
    """An empty MLflow SQLite store, and one with five versions of ``demand-forecast``: 1 champion,
    2 challenger, 3 for another series, 4 whose stored artifact is corrupt, 5 with a day missing.

    Logging the first model costs several seconds: tests copy the database file
    (aliases and tags live in it; the model files stay here)."""
    from mlflow import MlflowClient

    from helpers.lifecycle.registry import Registry
    from tests.lifecycle.conftest import copy_store, local_store

    gap = payload("2026-01-29T00:00:00")  # valid as an artifact; the service slices consecutive days only
    gap["models"]["ets"]["forecast"]["ds"][5:] = [f"2015-02-{d:02d}T00:00:00" for d in range(1, 26)]
    empty = copy_store(mlflow_store_db, tmp_path_factory.mktemp("mlflow-empty"))  # the session's empty store
    folder = copy_store(empty / "mlflow.db", tmp_path_factory.mktemp("mlflow-versions"))
    registry = Registry(local_store(folder), NAME)
    for created, alias, body in (("1", "champion", V1), ("2", "challenger", V2),
                                 ("3", None, payload("2026-01-15T00:00:00", series="other")),
                                 ("4", None, payload("2026-01-22T00:00:00")), ("5", None, gap)):
        registry.register(artifact.write_artifact(folder / f"v{created}.json", body), alias=alias)
    stored = Path(MlflowClient(registry.store.tracking_uri).get_model_version_download_uri(NAME, "4")
                  .removeprefix("file://")) / "artifacts" / "forecast_artifact.json"
    stored.write_text(stored.read_text()[:-40])  # the store's copy damaged after registration
    return empty / "mlflow.db", folder / "mlflow.db"


@pytest.fixture
def registry(store, tmp_path, monkeypatch):
    """A registry of this test's own (a copy of ``store``'s versions), which the settings name."""
    from helpers.lifecycle.registry import Registry
    from tests.lifecycle.conftest import copy_store, local_store

    folder = copy_store(store[1], tmp_path / "mlflow")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", service.ARTIFACT_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HELPERS_MLFLOW_DIR", str(folder))
    return Registry(local_store(folder), NAME)


@pytest.mark.slow
def test_promotion_and_rollback_switch_every_request_without_a_failure(registry, tmp_path):
    app = service.create_app(poll_seconds=REGISTRY_POLL, forecast_log_dir=tmp_path / "log")  # no file: the champion
    with serving(app) as port, Hammer(port) as hammer:
        hammer.wait_for(V1["created_utc"])
        before = get(port, "/models")
        registry.promote(2)
        hammer.wait_for(V2["created_utc"])
        # promote moves champion, then takes challenger from the version: a check between the two sees
        # version 2 under both aliases, the next one does not
        after = wait_until(lambda: (m := get(port, "/models"))["challenger"] is None and m, what="no challenger")
        registry.rollback()
        wait_until(lambda: get(port, "/health")["served_version"] == 1, what="the rollback served")
        hammer.wait_for(V1["created_utc"], answers=len([a for a in hammer.answers if b"2026-01-01" in a[2]]) + 50)
        health = get(port, "/health")
    assert hammer.errors == []
    check_every_answer(hammer.answers, [V1, V2])
    in_order(hammer, [V1["created_utc"], V2["created_utc"], V1["created_utc"]])
    one, two = registry.get(1), registry.get(2)
    assert before["served"] == {"version": 1, "artifact": f"models:/{NAME}/1", "lineage": one.lineage}
    assert before["challenger"] == {"version": 2, "aliases": ["challenger"], "run_id": two.run_id,
                                    "lineage": two.lineage, "cv": {"mae": 1008.0, "rmse": 1010.0}}
    assert after["served"]["version"] == 2 and after["served"]["lineage"]["created_utc"] == V2["created_utc"]
    assert after["models"][0]["rmse"] == 1010.0  # the models' metrics are the served version's
    source = health.pop("model_source")
    assert health["served_version"] == 1 and health["artifact"] == f"models:/{NAME}/1"
    assert (source["mode"], source["follows"], source["served_version"]) == ("registry", f"models:/{NAME}@champion", 1)
    assert source["last_refusal"] is None and source["last_check_error"] is None


def champion(registry, version: int) -> None:
    """Move the alias as the MLflow UI does, without the registry's own checks."""
    registry.client.set_registered_model_alias(NAME, "champion", str(version))


@pytest.mark.slow
def test_a_corrupt_or_incompatible_champion_is_refused_and_the_old_one_keeps_serving(registry, capfd):
    with TestClient(service.create_app(poll_seconds=REGISTRY_POLL, log_forecasts=False)) as client:
        champion(registry, 3)
        refused = refusal(client)
        assert refused["version"] == 3 and refused["what"] == f"version 3 of {NAME}"
        assert refused["reason"] == ("it forecasts series 'other' and the service serves series 's'; restart the "
                                     "service to serve another series")
        assert served(client) == V1["created_utc"] and client.get("/health").json()["served_version"] == 1
        champion(registry, 4)
        refused = wait_until(lambda: client.get("/health").json()["model_source"]["last_refusal"]["version"] == 4
                             and client.get("/health").json()["model_source"]["last_refusal"], what="a refusal of 4")
        assert refused["reason"].startswith(f"version 4 of {NAME} has an unusable forecast artifact (models:/{NAME}/4: "
                                            "corrupt JSON")
        assert served(client) == V1["created_utc"]
        champion(registry, 5)
        refused = wait_until(lambda: client.get("/health").json()["model_source"]["last_refusal"]["version"] == 5
                             and client.get("/health").json()["model_source"]["last_refusal"], what="a refusal of 5")
        assert refused["reason"] == (f"models:/{NAME}/5: model 'ets' forecast is not one row per consecutive day; "
                                     "rebuild the artifact with `make run`.")
        time.sleep(5 * REGISTRY_POLL)  # more checks: each version refused once, said once
        err = [line for line in capfd.readouterr().err.splitlines() if line.startswith("model source:")]
        assert len(err) == 3 and err[0].startswith(f"model source: refused version 3 of {NAME}: it forecasts ")
        assert err[1].startswith(f"model source: refused version 4 of {NAME}: ") and err[1].endswith(
            "; still serving version 1")
        assert err[2].startswith(f"model source: refused version 5 of {NAME}: models:/{NAME}/5: model 'ets'")
        champion(registry, 2)  # a good version is served again at once
        wait_until(lambda: served(client) == V2["created_utc"], what="version 2 served")
        assert list(client.app.state.model_source.source._downloads.iterdir()) == []  # nothing downloaded is kept


@pytest.mark.slow
def test_a_registry_that_cannot_be_read_keeps_the_old_one_serving(registry, capfd):
    db = Path(registry.store.tracking_uri.removeprefix("sqlite:///"))
    with TestClient(service.create_app(poll_seconds=REGISTRY_POLL, log_forecasts=False)) as client:
        good = db.read_bytes()
        db.write_bytes(b"not a database" * 100)
        error = wait_until(lambda: client.get("/health").json()["model_source"]["last_check_error"], what="a failure")
        assert error.startswith(f"cannot read models:/{NAME}@champion: ")
        assert served(client) == V1["created_utc"]
        db.write_bytes(good)
        wait_until(lambda: client.get("/health").json()["model_source"]["last_check_error"] is None, what="recovery")
    assert f"model source: models:/{NAME}@champion can be read again" in capfd.readouterr().err


@pytest.mark.slow
def test_the_service_refuses_to_start_without_a_champion_naming_make_run(store, tmp_path, monkeypatch, capsys):
    from tests.lifecycle.conftest import copy_store

    monkeypatch.delenv(service.ARTIFACT_ENV, raising=False)
    monkeypatch.setenv("HELPERS_MLFLOW_DIR", str(copy_store(store[0], tmp_path / "empty")))
    assert service.main([]) == 2
    never = capsys.readouterr().err
    monkeypatch.setenv("HELPERS_MLFLOW_DIR", str(tmp_path / "never-made"))
    assert service.main([]) == 2 and capsys.readouterr().err == never
    assert not (tmp_path / "never-made").exists()  # reading a registry makes no store
    assert never == (
        f"error: cannot serve forecasts: no version of {NAME} is the champion in the model registry (mlflow_dir, or "
        "MLFLOW_TRACKING_URI); `make run` registers the first as champion, `make promote VERSION=N` makes another "
        "one champion, or serve a file with --artifact FILE\n")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "mlflow.db").write_bytes(b"not a database" * 100)
    monkeypatch.setenv("HELPERS_MLFLOW_DIR", str(tmp_path / "broken"))
    assert service.main([]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: cannot serve forecasts: the model registry cannot be read (") and "Traceback" not in err
    monkeypatch.setenv("HELPERS_REGISTRY_MODEL", "no/slash")
    assert service.main([]) == 2
    assert capsys.readouterr().err.startswith("error: cannot serve forecasts: registry_model must be 1 to 256 letters")


@pytest.mark.slow
def test_make_serve_follows_the_champion_and_sighup_makes_it_check_at_once(registry, tmp_path):
    """``python -m helpers.app.service`` without a file serves the champion; with the next poll an
    hour away, SIGHUP makes it take a promotion at once (and a refused version is tried again)."""
    import signal

    with service_process("--no-forecast-log", stderr=tmp_path / "err",
                         env={"HELPERS_REGISTRY_POLL_SECONDS": "3600"}) as (port, process):
        assert get(port, "/health")["served_version"] == 1
        registry.promote(2)
        time.sleep(0.3)
        assert get(port, "/health")["served_version"] == 1  # no check until the poll or a signal
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: get(port, "/health")["served_version"] == 2, timeout=5, what="the reload on SIGHUP")
        assert process.poll() is None  # SIGHUP's default action would have ended the process
    err = (tmp_path / "err").read_text()
    assert err.splitlines()[-1] == "model source: now serving version 2 (was version 1)", err
    assert "Traceback" not in err


class _Unreachable:
    """A registry client that fails any query: a check that does not query passes it by."""

    def get_registered_model(self, name):
        raise AssertionError("the store was queried although its database file had not changed")


@pytest.mark.slow
def test_a_check_of_an_unchanged_local_store_does_not_query_it_and_a_commit_is_seen(registry):
    from helpers.lifecycle.registry import Registry

    source = model_source.RegistrySource(Registry(registry.store, NAME), NAME)
    assert source.current() == 1
    client, source.registry._client = source.registry.client, _Unreachable()
    assert source.current() == 1  # two stat calls, no query: the event loop is not held for one
    source.registry._client = client
    registry.promote(2)  # another process's commit writes the database file
    assert source.current() == 2
    assert source.current() == 2
