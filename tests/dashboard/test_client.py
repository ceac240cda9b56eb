"""The dashboard's client of the service: every way a request fails is a sentence saying what to do
(real HTTP servers on 127.0.0.1: one answering as told, one that never answers in time)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers.core.settings import load_settings
from helpers.dashboard.client import ServiceClient, ServiceError
from tests.servers import free_port


@contextmanager
def answering(status: int, body: bytes, delay: float = 0.0) -> Iterator[tuple[str, list[dict]]]:
    """A server answering every request with ``status`` and ``body`` after ``delay`` s; what it was asked."""
    asked: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            asked.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                          "body": self.rfile.read(length)})
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (the timeout test)
                pass

        do_GET = do_POST = answer  # noqa: N815 (http.server's hook names)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_predict_names_the_dashboard_as_its_source_and_sends_the_days():
    with answering(200, b'{"dates": []}') as (url, asked):
        assert ServiceClient(url).predict(date(2015, 1, 1), date(2015, 1, 2), "ets") == {"dates": []}
        ServiceClient(url).predictions(date(2015, 1, 1), None, "webapp")
    assert asked[0]["headers"]["X-Request-Source"] == "webapp" and asked[0]["path"] == "/predict"
    assert asked[0]["body"] == b'{"start_date":"2015-01-01","end_date":"2015-01-02","model":"ets"}'
    assert asked[1]["path"] == "/predictions?source=webapp&start_date=2015-01-01"


def test_a_service_that_is_down_is_a_sentence_naming_make_serve_and_the_setting():
    with pytest.raises(ServiceError, match=r"is not running .*`make serve`.*HELPERS_DASHBOARD_SERVICE_URL"):
        ServiceClient(f"http://127.0.0.1:{free_port()}").health()


def test_a_service_that_does_not_answer_in_time_names_the_timeout_setting():
    with answering(200, b"{}", delay=1.0) as (url, _):
        with pytest.raises(ServiceError, match=r"within dashboard_timeout_seconds=0.2 s.*HELPERS_DASHBOARD_TIMEOUT"):
            ServiceClient(url, timeout=0.2).models()


@pytest.mark.parametrize("status, body, message", [
    (422, b'{"detail": "unknown model \'x\'; allowed: ets"}', r"refused the request: unknown model 'x'; allowed: ets"),
    (500, b"Internal Server Error", r"answered GET /models with HTTP 500 \(Internal Server Error\)"),
    (503, b"", r"HTTP 503 \(no detail given\)"),
    (200, b"<html>not json</html>", r"something that is not JSON; is http://127.0.0.1:\d+ the forecast service"),
])
def test_what_the_service_answers_instead_of_json_is_a_sentence(status, body, message):
    with answering(status, body) as (url, _):
        with pytest.raises(ServiceError, match=message):
            ServiceClient(url).models()


def test_an_address_that_is_not_http_is_a_sentence():
    with pytest.raises(ServiceError, match="check dashboard_service_url"):
        ServiceClient("http://[::1").health()


def test_a_source_that_is_not_one_of_the_services_is_refused_before_asking():
    with pytest.raises(ValueError, match="source must be one of webapp, scheduled, api, all"):
        ServiceClient("http://127.0.0.1:1").predictions(source="web")


def test_the_client_comes_from_the_settings(clean_env, monkeypatch):
    monkeypatch.setenv("HELPERS_DASHBOARD_SERVICE_URL", "http://127.0.0.1:9999/")
    monkeypatch.setenv("HELPERS_DASHBOARD_TIMEOUT_SECONDS", "2.5")
    assert ServiceClient.from_settings(load_settings()) == ServiceClient("http://127.0.0.1:9999", 2.5)


@pytest.mark.parametrize("value, message", [
    ("ftp://host", "must be the forecast service's http"), ("http://host:8000/api", "no path"),
    ("http://user:secret@host", "must not carry credentials"), ("", "must not be empty"),
])
def test_a_bad_service_address_is_refused_naming_the_setting(clean_env, monkeypatch, value, message):
    from helpers.core.settings import ConfigError

    monkeypatch.setenv("HELPERS_DASHBOARD_SERVICE_URL", value)
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings()
    assert "secret" not in str(raised.value)
