"""GET /metrics: request counts on both paths of the service, the latency histogram, predictions
by model, the served model after a swap, and the last cycle's monitoring signals, read back
with prometheus-client's own parser of the text format."""

from __future__ import annotations

import asyncio
import math
from datetime import date, datetime, timezone
from time import perf_counter

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from helpers.app import metrics, service
from helpers.forecast import artifact
from helpers.operate.monitoring import Signal
from helpers.operate.signal_snapshot import SIGNALS_NAME, write_signal_snapshot
from tests.support import artifact_payload

PAYLOAD = artifact_payload(n=30, models=("ets", "holt_winters", "ensemble"))
JSON = {"content-type": "application/json"}
ORDINARY = b'{"start_date": "2015-01-01", "end_date": "2015-01-14", "model": "ensemble", "include_confidence": true}'
SIGNAL_FAMILIES = ("forecast_rolling_error_ratio", "forecast_interval_coverage_ratio", "forecast_drift_psi",
                   "forecast_drift_ks_pvalue", "forecast_data_invalid_ratio", "forecast_data_quality_criticality",
                   "forecast_monitoring_signal_status", "forecast_monitoring_snapshot_timestamp_seconds")


@pytest.fixture(scope="module")
def artifact_file(tmp_path_factory):
    return artifact.write_artifact(tmp_path_factory.mktemp("model") / "forecast_artifact.json", PAYLOAD)


@pytest.fixture
def client(artifact_file, tmp_path):
    app = service.create_app(artifact_file, forecast_log_dir=tmp_path / "log", flush_seconds=600,
                             max_request_bytes=4096)
    with TestClient(app) as client:
        yield client


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of GET /metrics by (name, sorted labels), parsed as Prometheus would."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def names(samples) -> set[str]:
    return {name for name, _ in samples}


def test_requests_are_counted_by_route_and_status_on_both_paths(client):
    for _ in range(3):  # the direct path
        assert client.post("/predict", content=ORDINARY, headers=JSON).status_code == 200
    # FastAPI's path: pydantic takes "true" for true (200), start after end (422), a body over
    # max_request_bytes (413), a GET (405)
    assert client.post("/predict", json={"start_date": "2015-01-02", "end_date": "2015-01-03",
                                         "include_confidence": "true"}).status_code == 200
    assert client.post("/predict", json={"start_date": "2015-01-03", "end_date": "2015-01-02"}).status_code == 422
    assert client.post("/predict", content=b'{"model": "' + b"x" * 5000 + b'"}', headers=JSON).status_code == 413
    assert client.get("/predict").status_code == 405
    assert client.get("/models").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    assert client.get("/metricsx").status_code == 404

    samples = scrape(client)
    requests = {dict(labels)["route"] + " " + dict(labels)["status"]: v
                for (name, labels), v in samples.items() if name == "http_requests_total"}
    assert requests == {"/predict 200": 4, "/predict 422": 1, "/predict 413": 1, "/predict 405": 1,
                        "/models 200": 1, "/health 200": 1, "other 404": 2}
    # the scrape counts itself once it has answered
    assert value(scrape(client), "http_requests_total", route="/metrics", status="200") == 1


def test_an_ordinary_request_is_counted_without_reaching_fastapi(client, monkeypatch):
    from fastapi import FastAPI

    async def refuse(self, scope, receive, send):
        raise AssertionError(f"{scope['method']} {scope['path']} went through FastAPI")

    with monkeypatch.context() as patched:
        patched.setattr(FastAPI, "__call__", refuse)
        assert client.post("/predict", content=ORDINARY, headers=JSON).status_code == 200
    samples = scrape(client)
    assert value(samples, "http_requests_total", route="/predict", status="200") == 1
    assert value(samples, "forecast_predictions_total", model="ensemble") == 1
    assert value(samples, "http_request_duration_seconds_count", route="/predict") == 1


def test_the_latency_histogram_is_cumulative_and_counts_every_request(client):
    for _ in range(5):
        client.post("/predict", content=ORDINARY, headers=JSON)
    client.post("/predict", json={"start_date": "2015-01-03", "end_date": "2015-01-02"})
    samples = scrape(client)
    buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in samples.items()
                     if name == "http_request_duration_seconds_bucket" and dict(labels)["route"] == "/predict")
    assert [le for le, _ in buckets] == [*metrics.BUCKETS, math.inf]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == 6
    assert value(samples, "http_request_duration_seconds_count", route="/predict") == 6
    assert 0 < value(samples, "http_request_duration_seconds_sum", route="/predict") < 60


def test_an_observation_lands_in_the_first_bucket_whose_bound_it_does_not_exceed(tmp_path):
    counts = metrics.ServiceMetrics(lambda: None, tmp_path / SIGNALS_NAME)
    for seconds in (0.00001, 0.005, 0.0050001, 10.0):
        counts.observe("/models", 200, seconds)
    text = counts.exposition().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    bucket = {le: value(samples, "http_request_duration_seconds_bucket", route="/models", le=le)
              for le in ("5e-05", "0.0025", "0.005", "0.01", "5.0", "+Inf")}
    assert bucket == {"5e-05": 1, "0.0025": 1, "0.005": 2, "0.01": 3, "5.0": 3, "+Inf": 4}
    assert value(samples, "http_request_duration_seconds_sum", route="/models") == pytest.approx(10.0100101)
    # before any request, /predict's 200s are there at 0 (rates and ratios have a series); no predictions yet
    assert value(samples, "http_requests_total", route="/predict", status="200") == 0
    assert "forecast_predictions_total" not in names(samples)


def test_predictions_and_days_served_are_counted_by_model_on_both_paths(client):
    client.post("/predict", content=ORDINARY, headers=JSON)  # ensemble, 14 days
    client.post("/predict", json={"start_date": "2015-01-30", "end_date": "2015-01-30"})  # the selected ets, 1 day
    client.post("/predict", json={"start_date": "2015-01-02", "end_date": "2015-01-03",
                                  "include_confidence": "true"})  # through FastAPI's route: ets, 2 days
    client.post("/predict", json={"start_date": "2015-01-02", "end_date": "2015-01-03", "model": "xgboost"})  # 422
    samples = scrape(client)
    served = {dict(labels)["model"]: v for (name, labels), v in samples.items() if name == "forecast_predictions_total"}
    days = {dict(labels)["model"]: v for (name, labels), v in samples.items() if name == "forecast_days_served_total"}
    assert served == {"ensemble": 1, "ets": 2}
    assert days == {"ensemble": 14, "ets": 3}


def test_metrics_requests_are_not_logged_as_predictions(client):
    client.post("/predict", content=ORDINARY, headers=JSON)
    log = client.app.state.log
    pending = log.pending
    for _ in range(3):
        samples = scrape(client)
    assert log.pending == pending == 1
    assert value(samples, "forecast_predictions_total", model="ensemble") == 1
    assert value(samples, "http_requests_total", route="/metrics", status="200") == 2


def test_the_model_gauge_follows_the_model_served_now(client, tmp_path):
    samples = scrape(client)
    info = {labels: v for (name, labels), v in samples.items() if name == "forecast_model_info"}
    assert info == {(("model", "ets"), ("registry_version", ""), ("series_id", "s"), ("version", "2026-01-01T00:00:00")): 1}
    assert value(samples, "forecast_last_data_timestamp_seconds", source="artifact") == \
        datetime(2014, 12, 31, tzinfo=timezone.utc).timestamp()

    newer = {**artifact_payload(n=30, models=("holt_winters", "ets"), start="2015-03-01"),
             "created_utc": "2026-02-01T00:00:00", "training_end": "2015-02-28"}
    client.app.state.forecasts = service.Forecasts.load(artifact.write_artifact(tmp_path / "newer.json", newer),
                                                        version=7)
    samples = scrape(client)
    info = {labels: v for (name, labels), v in samples.items() if name == "forecast_model_info"}
    assert info == {(("model", "holt_winters"), ("registry_version", "7"), ("series_id", "s"),
                     ("version", "2026-02-01T00:00:00")): 1}
    assert value(samples, "forecast_last_data_timestamp_seconds", source="artifact") == \
        datetime(2015, 2, 28, tzinfo=timezone.utc).timestamp()


SIGNALS = [
    Signal("accuracy:ets", "red", 1.9, "", ""), Signal("accuracy:naive", "green", 0.8, "", ""),
    Signal("coverage_80:ets", "orange", 0.66, "", ""), Signal("coverage_95:ets", "green", 0.93, "", ""),
    Signal("coverage_95:naive", "grey", None, "", ""),
    Signal("drift:y_mean", "red", 0.31, "", ""), Signal("drift:temperature_mean", "grey", None, "", ""),
    Signal("data_quality:invalid_share", "green", 0.004, "", ""),
    Signal("data_quality:criticality", "orange", 1.0, "", ""),
]


def write_signals(client, signals=SIGNALS, last_actual=date(2015, 1, 20)):
    return write_signal_snapshot(client.app.state.predictions.log_dir / SIGNALS_NAME, signals, series_id="s",
                                 as_of=datetime(2015, 1, 21, 6), last_actual=last_actual,
                                 drift_ks_pvalues={"y_mean": 0.002})


def test_the_monitoring_signals_are_gauges_once_a_cycle_wrote_them(client):
    samples = scrape(client)
    assert not names(samples) & set(SIGNAL_FAMILIES)  # absent, not zero
    assert value(samples, "forecast_last_data_timestamp_seconds", source="actuals") is None

    before = datetime.now(timezone.utc).replace(microsecond=0).timestamp()
    write_signals(client)
    samples = scrape(client)
    assert value(samples, "forecast_rolling_error_ratio", model="ets") == 1.9
    assert value(samples, "forecast_rolling_error_ratio", model="naive") == 0.8
    assert value(samples, "forecast_interval_coverage_ratio", model="ets", level="80") == 0.66
    assert value(samples, "forecast_interval_coverage_ratio", model="ets", level="95") == 0.93
    assert value(samples, "forecast_drift_psi", variable="y_mean") == 0.31
    assert value(samples, "forecast_drift_ks_pvalue", variable="y_mean") == 0.002
    assert value(samples, "forecast_data_invalid_ratio") == 0.004
    assert value(samples, "forecast_data_quality_criticality") == 1  # medium
    status = {dict(labels)["signal"]: v for (name, labels), v in samples.items()
              if name == "forecast_monitoring_signal_status"}
    assert status == {"accuracy:ets": 2, "accuracy:naive": 0, "coverage_80:ets": 1, "coverage_95:ets": 0,
                      "drift:y_mean": 2, "data_quality:invalid_share": 0, "data_quality:criticality": 1}
    # grey signals are left out
    assert value(samples, "forecast_interval_coverage_ratio", model="naive", level="95") is None
    assert value(samples, "forecast_drift_psi", variable="temperature_mean") is None
    assert value(samples, "forecast_last_data_timestamp_seconds", source="actuals") == \
        datetime(2015, 1, 20, tzinfo=timezone.utc).timestamp()
    assert before <= value(samples, "forecast_monitoring_snapshot_timestamp_seconds") <= before + 60


def test_a_new_snapshot_is_read_at_the_next_scrape_and_a_broken_one_leaves_the_gauges_out(client, capfd):
    write_signals(client)
    assert value(scrape(client), "forecast_rolling_error_ratio", model="ets") == 1.9
    write_signals(client, [Signal("accuracy:ets", "green", 1.1, "", "")], last_actual=None)
    samples = scrape(client)
    assert value(samples, "forecast_rolling_error_ratio", model="ets") == 1.1
    assert value(samples, "forecast_rolling_error_ratio", model="naive") is None
    assert value(samples, "forecast_last_data_timestamp_seconds", source="actuals") is None

    path = client.app.state.predictions.log_dir / SIGNALS_NAME
    path.write_bytes(b'{"format": 1, "signals": [')  # cut short
    capfd.readouterr()
    for _ in range(2):
        samples = scrape(client)
        assert not names(samples) & set(SIGNAL_FAMILIES)
        assert value(samples, "forecast_model_info", model="ets", series_id="s", version="2026-01-01T00:00:00",
                     registry_version="") == 1
    err = capfd.readouterr().err
    assert err.count("cannot read the monitoring signals") == 1, err  # once per version of the file
    assert str(path) in err


def test_with_metrics_off_nothing_is_counted_and_there_is_no_metrics_route(artifact_file, tmp_path):
    app = service.create_app(artifact_file, forecast_log_dir=tmp_path / "log", metrics=False)
    with TestClient(app) as client:
        assert client.post("/predict", content=ORDINARY, headers=JSON).status_code == 200
        assert client.get("/metrics").status_code == 404
    assert app.metrics is None


def _count(app, path: str = "/models"):
    """``ServiceMetrics.count`` run on the ASGI ``app`` for one GET of ``path``: the counts and what was sent."""
    counts, sent = metrics.ServiceMetrics(lambda: None, "/nonexistent/signals.json"), []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(counts.count(app, {"type": "http", "method": "GET", "path": path, "headers": []}, receive, send,
                             perf_counter()))
    return counts, sent


def test_a_request_is_counted_with_the_status_it_was_answered_and_not_when_the_client_left():
    async def answers(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def silent(scope, receive, send):  # the client left before an answer
        return None

    counts, sent = _count(answers)
    assert counts.routes["/models"].statuses == {204: 1}
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    counts, sent = _count(silent)
    assert sent == [] and counts.routes["/models"].statuses == {}


def test_an_exception_before_an_answer_is_counted_as_a_500_and_raised_again():
    async def broken(scope, receive, send):
        raise RuntimeError("boom")

    counts = metrics.ServiceMetrics(lambda: None, "/nonexistent/signals.json")

    async def send(message):
        pass

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(counts.count(broken, {"type": "http", "method": "GET", "path": "/health", "headers": []}, None,
                                 send, perf_counter()))
    assert counts.routes["/health"].statuses == {500: 1}
