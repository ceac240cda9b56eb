"""The service follows what it serves: a replaced file, a promotion and a rollback switch every
request to the new model without a failed request; a corrupt or incompatible one is refused.

The switches under load run against a real uvicorn (uvloop, httptools, as ``make serve``) on
127.0.0.1 in a thread of the test, with client threads posting /predict throughout.
"""

from __future__ import annotations

import copy
import http.client
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from helpers.app import model_source, service
from helpers.core.files import write_atomic
from helpers.forecast import artifact
from tests.support import artifact_payload

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


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "the condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"{what} did not happen within {timeout} s")


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
    switches = [v["created_utc"] for v in versions]
    for seen in hammer.served():  # each client saw the switches in order, never an old model after a new one
        assert seen == switches[switches.index(seen[0]):switches.index(seen[-1]) + 1], seen
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
    artifact.write_artifact(path, payload("2026-03-01T00:00:00", 5.0))  # a good one is taken again
    wait_until(lambda: served(client) == "2026-03-01T00:00:00", what="the good artifact served")
    assert client.get("/health").json()["model_source"]["last_refusal"] == refused  # the last refusal stays shown


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


def test_models_shows_the_served_artifact_s_own_lineage_in_file_mode(followed):
    client, path = followed
    body = client.get("/models").json()
    assert body["served"] == {"version": None, "artifact": str(path), "lineage": {
        "created_utc": "2026-01-01T00:00:00", "training_start": "2014-01-01", "training_end": "2014-12-31",
        "data_sha256": "x" * 64, "git_commit": "abc"}}
    assert body["challenger"] is None
    assert body["selected_model"] == "ets" and len(body["models"]) == 3  # the fields clients used are kept


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


def test_sighup_makes_the_service_process_check_at_once(tmp_path):
    import signal

    path = tmp_path / "forecast_artifact.json"
    artifact.write_artifact(path, payload("2026-01-01T00:00:00"))
    with service_process("--artifact", str(path), "--no-forecast-log", stderr=tmp_path / "err",
                         env={"HELPERS_REGISTRY_POLL_SECONDS": "3600"}) as (port, process):
        artifact.write_artifact(path, payload("2026-01-08T00:00:00", 1000.0))
        time.sleep(0.3)
        assert get(port, "/health")["last_updated"] == "2026-01-01T00:00:00"  # the next poll is an hour away
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: get(port, "/health")["last_updated"] == "2026-01-08T00:00:00", timeout=5,
                   what="the reload on SIGHUP")
        assert process.poll() is None  # SIGHUP's default action would have ended the process
    assert (tmp_path / "err").read_text() == (f"model source: now serving {path} of 2026-01-08T00:00:00 (was {path} of "
                                              "2026-01-01T00:00:00)\n")
