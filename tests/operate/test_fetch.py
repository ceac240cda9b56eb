"""The fetch against a real local HTTP server (no mock of httpx): pages, conditional requests,
retries, Retry-After, timeouts, the circuit breaker, the token and the state file.

Each test scripts the server's answers per path; every request it receives is recorded with
its headers and arrival time. Timeouts, backoff and cool-downs are tiny, so the file runs in
a few seconds; the two Retry-After tests wait the 1 s they are asked to.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pandas as pd
import pytest

from helpers.core.settings import load_settings
from helpers.operate import fetch
from helpers.operate.fetch import STATE_FILE, FetchResult, fetch_to_inbox, main, redact

TOKEN_ENV = "HELPERS_TEST_FETCH_TOKEN"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@dataclass
class Answer:
    status: int = 200
    body: Any = ""  # text, or anything else is sent as JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]  # names in lower case
    at: float  # time.monotonic()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that timed out and left is expected
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def do_GET(self):
        seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, time.monotonic())
        with self.server.lock:
            self.server.seen.append(seen)
            answers = self.server.script.get(self.path, [Answer(404, "no such page")])
            answer = answers.pop(0) if len(answers) > 1 else answers[0]  # the last answer repeats
        if callable(answer):
            answer = answer(seen)
        time.sleep(answer.delay)
        body = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
        data = body.encode()
        self.send_response_only(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


class Source:
    """A scripted HTTP source on 127.0.0.1: ``on(path, *answers)``, then read ``seen``."""

    def __init__(self) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.lock, self.server.script, self.server.seen = threading.Lock(), {}, []
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def on(self, path: str, *answers: Answer | Callable[[Seen], Answer]) -> None:
        with self.server.lock:
            self.server.script[path] = list(answers)

    @property
    def seen(self) -> list[Seen]:
        with self.server.lock:
            return list(self.server.seen)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def source():
    server = Source()
    yield server
    server.close()


@pytest.fixture
def make_settings(clean_env, monkeypatch, tmp_path):
    """Settings for a fetch from ``url`` into ``tmp_path/inbox``: small timeouts and pauses, no token."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)

    def make(url: str, **overrides: Any):
        values = dict(fetch_url=url, fetch_format="csv", fetch_timeout_seconds=0.5, fetch_retries=2,
                      fetch_backoff_seconds=0.01, fetch_breaker_failures=3, fetch_breaker_cooldown_seconds=60,
                      fetch_token_env=TOKEN_ENV, inbox_dir=str(tmp_path / "inbox"))
        return load_settings(**{**values, **overrides})

    return make


def inbox_files(settings) -> list[str]:
    return sorted(p.name for p in settings.inbox_dir.iterdir()) if settings.inbox_dir.exists() else []


CSV_1 = "timestamp,demand\n2024-05-01T00:00,10\n2024-05-01T01:00,11\n"
CSV_2 = "timestamp,demand\n2024-05-01T02:00,12\n2024-05-01T03:00,13"  # no final line end
CSV_3 = "timestamp,demand\r\n2024-05-01T04:00,14\r\n"


def test_csv_pages_linked_by_link_headers_become_one_file(source, make_settings):
    source.on("/data", Answer(body=CSV_1, headers={"Link": '</data?page=2>; rel="next"'}))
    source.on("/data?page=2", Answer(body=CSV_2, headers={"Link": f'<{source.url}/data?page=3>; rel="next"'}))
    source.on("/data?page=3", Answer(body=CSV_3))
    settings = make_settings(f"{source.url}/data")

    result = fetch_to_inbox(settings, now=T0)

    assert (result.status, result.pages, result.rows, result.requests) == ("fetched", 3, 5, 3)
    assert [p.name for p in result.files] == ["fetched-20240501T120000.000000Z.csv"]
    assert inbox_files(settings) == [STATE_FILE, "fetched-20240501T120000.000000Z.csv"]  # no temporary file left
    table = pd.read_csv(result.files[0])
    assert list(table.columns) == ["timestamp", "demand"] and table["demand"].tolist() == [10, 11, 12, 13, 14]
    assert result.message.startswith(f"Fetched 5 rows in 3 pages from {source.url}/data into ")
    assert [s.path for s in source.seen] == ["/data", "/data?page=2", "/data?page=3"]
    assert all(s.headers["accept"] == "text/csv" for s in source.seen)


def test_json_pages_are_written_as_csv(source, make_settings):
    source.on("/items", Answer(body={"data": [{"ts": "2024-05-01T00:00", "y": 1}, {"ts": "2024-05-01T01:00", "y": 2}],
                                     "next": "/items?page=2"}))
    # a plain list of records, continued by a Link header; a record without y; then an empty last page
    source.on("/items?page=2", Answer(body=[{"ts": "2024-05-01T02:00"}], headers={"Link": '</items?page=3>; rel="next"'}))
    source.on("/items?page=3", Answer(body={"data": [], "next": ""}))
    settings = make_settings(f"{source.url}/items", fetch_format="json")

    result = fetch_to_inbox(settings, now=T0)

    assert (result.status, result.pages, result.rows) == ("fetched", 3, 3)
    # values as the source sent them: 1 stays 1 (not 1.0) although a record lacks y
    assert result.files[0].read_text() == "ts,y\n2024-05-01T00:00,1\n2024-05-01T01:00,2\n2024-05-01T02:00,\n"
    assert source.seen[0].headers["accept"] == "application/json"


def test_an_unchanged_source_is_not_fetched_twice(source, make_settings):
    validators = {"ETag": '"v1"', "Last-Modified": "Wed, 01 May 2024 11:00:00 GMT"}
    source.on("/data", lambda seen: Answer(304) if seen.headers.get("if-none-match") == '"v1"'
              else Answer(body=CSV_1, headers=validators))
    settings = make_settings(f"{source.url}/data")
    assert fetch_to_inbox(settings, now=T0).status == "fetched"

    result = fetch_to_inbox(settings, now=T0 + timedelta(hours=1))

    assert (result.status, result.files, result.pages, result.requests) == ("unchanged", [], 0, 1)
    assert "has not changed since the last fetch (304 Not Modified)" in result.message
    assert source.seen[1].headers["if-none-match"] == '"v1"'
    assert source.seen[1].headers["if-modified-since"] == validators["Last-Modified"]
    assert len([name for name in inbox_files(settings) if name.startswith("fetched-")]) == 1


def test_the_validators_of_another_source_are_not_sent(source, make_settings):
    source.on("/a", Answer(body=CSV_1, headers={"ETag": '"a1"'}))
    source.on("/b", Answer(body=CSV_1))
    fetch_to_inbox(make_settings(f"{source.url}/a"), now=T0)

    assert fetch_to_inbox(make_settings(f"{source.url}/b"), now=T0).status == "fetched"
    assert "if-none-match" not in source.seen[1].headers


def test_429_waits_the_retry_after_seconds_then_succeeds(source, make_settings):
    source.on("/data", Answer(429, "slow down", {"Retry-After": "1"}), Answer(body=CSV_1))

    result = fetch_to_inbox(make_settings(f"{source.url}/data"), now=T0)

    assert (result.status, result.requests) == ("fetched", 2)
    first, second = source.seen
    assert second.at - first.at >= 1.0


def test_retry_after_as_an_http_date_counts_from_the_server_s_date(source, make_settings):
    stamp = time.time()
    later = {"Date": formatdate(stamp, usegmt=True), "Retry-After": formatdate(stamp + 1, usegmt=True)}
    source.on("/data", Answer(503, headers=later), Answer(body=CSV_1))

    result = fetch_to_inbox(make_settings(f"{source.url}/data"), now=T0)

    assert result.status == "fetched"
    first, second = source.seen
    assert second.at - first.at >= 1.0


def test_a_retry_after_beyond_the_cap_is_cut_and_said_and_a_bad_one_falls_back_to_backoff(
        source, make_settings, monkeypatch):
    monkeypatch.setattr(fetch, "MAX_WAIT_SECONDS", 0.2)
    source.on("/data", Answer(503, headers={"Retry-After": "soon"}), Answer(429, headers={"Retry-After": "3600"}),
              Answer(body=CSV_1))
    started = time.monotonic()

    result = fetch_to_inbox(make_settings(f"{source.url}/data"), now=T0)

    assert (result.status, result.requests) == ("fetched", 3)
    assert 0.2 <= time.monotonic() - started < 3
    assert "The source asked to wait 3600 s (Retry-After); this fetch waited 0.2 s, the longest it waits." \
        in result.message


def test_5xx_are_retried_then_the_fetch_succeeds(source, make_settings):
    source.on("/data", Answer(500), Answer(502), Answer(body=CSV_1))

    result = fetch_to_inbox(make_settings(f"{source.url}/data", fetch_retries=2), now=T0)

    assert (result.status, result.rows, result.requests) == ("fetched", 2, 3)


@pytest.mark.parametrize("status, said", [
    (503, "the source answered 503 Service Unavailable (3 attempts), a fault on its side; check the source's status"),
    (429, "the source answered 429 Too Many Requests (3 attempts); fetch less often"),
])
def test_a_source_that_keeps_failing_fails_after_the_retries(source, make_settings, status, said):
    source.on("/data", Answer(status))

    result = fetch_to_inbox(make_settings(f"{source.url}/data", fetch_retries=2), now=T0)

    assert (result.status, result.requests, result.files) == ("failed", 3, [])
    assert result.message.startswith(f"Fetching {source.url}/data failed: {said}")
    assert "raise fetch_retries (now 2)" in result.message and "1 of 3 failed fetches in a row" in result.message


def test_a_timeout_is_retried_then_fails_with_a_clear_message(source, make_settings):
    source.on("/data", Answer(body=CSV_1, delay=1.0))
    settings = make_settings(f"{source.url}/data", fetch_timeout_seconds=0.2, fetch_retries=1)
    started = time.monotonic()

    result = fetch_to_inbox(settings, now=T0)

    assert time.monotonic() - started < 1.0
    assert (result.status, result.requests) == ("failed", 2)
    assert result.message.startswith(f"Fetching {source.url}/data failed: no answer within "
                                     "fetch_timeout_seconds=0.2 s (ReadTimeout, 2 attempts); check that the source "
                                     "is up, or raise fetch_timeout_seconds (set fetch_timeout_seconds in env.yaml "
                                     "or HELPERS_FETCH_TIMEOUT_SECONDS)")
    assert inbox_files(settings) == [STATE_FILE]


def test_a_refused_connection_is_retried_then_fails(make_settings):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = fetch_to_inbox(make_settings(f"http://127.0.0.1:{port}/data", fetch_retries=1), now=T0)

    assert (result.status, result.requests) == ("failed", 2)
    assert "the request failed after 2 attempts (ConnectError: " in result.message
    assert "check fetch_url and that the source is reachable from this machine" in result.message


def test_the_breaker_opens_skips_without_a_request_and_half_opens_after_the_cooldown(source, make_settings):
    source.on("/data", Answer(500))
    settings = make_settings(f"{source.url}/data", fetch_retries=0, fetch_breaker_failures=2,
                             fetch_breaker_cooldown_seconds=60)

    def at(seconds: float) -> FetchResult:
        return fetch_to_inbox(settings, now=T0 + timedelta(seconds=seconds))

    assert "1 of 2 failed fetches in a row before the circuit breaker opens" in at(0).message
    opened = at(1)
    assert opened.status == "failed"
    assert "the circuit breaker is now open after 2 failed fetches in a row, so no fetch is tried until " \
           "2024-05-01 12:01:01 UTC (fetch_breaker_cooldown_seconds=60)" in opened.message

    skipped = at(30)
    assert (skipped.status, skipped.requests, len(source.seen)) == ("skipped_breaker_open", 0, 2)
    assert skipped.message.startswith(
        f"Skipped fetching {source.url}/data: the circuit breaker is open after 2 failed fetches in a row (last: the "
        "source answered 500 Internal Server Error (1 attempt), a fault on its side) until 2024-05-01 12:01:01 UTC, "
        "then one trial fetch runs; fix the source, or delete ")
    assert skipped.message.endswith(f"{STATE_FILE} to try at once (fetch_breaker_cooldown_seconds sets the pause).")

    reopened = at(61)  # half-open: one trial, which fails, opens the breaker again
    assert (reopened.status, reopened.requests) == ("failed", 1)
    assert "now open after 3 failed fetches in a row, so no fetch is tried until 2024-05-01 12:02:01 UTC" \
        in reopened.message
    assert at(100).status == "skipped_breaker_open"

    source.on("/data", Answer(body=CSV_1))
    assert at(121).status == "fetched"  # the trial succeeds: the breaker closes
    source.on("/data", Answer(500))
    assert "1 of 2 failed fetches in a row" in at(122).message


def test_the_token_is_sent_to_the_source_only_and_written_nowhere(source, make_settings, monkeypatch):
    elsewhere = Source()  # another origin (port): a next link there gets no token
    try:
        elsewhere.on("/more", Answer(body=CSV_2))
        source.on("/data", Answer(body=CSV_1, headers={"ETag": '"v1"', "Link": f'<{elsewhere.url}/more>; rel="next"'}))
        settings = make_settings(f"{source.url}/data")
        monkeypatch.setenv(TOKEN_ENV, "s3cret-token")

        result = fetch_to_inbox(settings, now=T0)

        assert result.status == "fetched" and result.rows == 4
        assert source.seen[0].headers["authorization"] == "Bearer s3cret-token"
        assert "authorization" not in elsewhere.seen[0].headers
        written = [(settings.inbox_dir / name).read_text() for name in inbox_files(settings)]
        assert all("s3cret" not in text for text in [*written, result.message])

        monkeypatch.delenv(TOKEN_ENV)
        source.on("/data", Answer(body=CSV_1))
        fetch_to_inbox(settings, now=T0)
        assert "authorization" not in source.seen[1].headers
    finally:
        elsewhere.close()


@pytest.mark.parametrize("token, said", [
    (None, f"the source refused access (401 Unauthorized) on page 1: {TOKEN_ENV} is not set; put a valid bearer "
           f"token in the environment variable {TOKEN_ENV}"),
    ("expired", f"the source refused access (401 Unauthorized) on page 1: the source did not accept the token in "
                f"{TOKEN_ENV}; put a valid bearer token"),
])
def test_401_is_not_retried_and_names_the_token_variable(source, make_settings, monkeypatch, token, said):
    if token:
        monkeypatch.setenv(TOKEN_ENV, token)
    source.on("/data", Answer(401))

    result = fetch_to_inbox(make_settings(f"{source.url}/data"), now=T0)

    assert (result.status, result.requests) == ("failed", 1)
    assert said in result.message and "fetch_token_env" in result.message
    assert "expired" not in result.message


def test_other_4xx_are_not_retried_and_point_at_fetch_url(source, make_settings):
    result = fetch_to_inbox(make_settings(f"{source.url}/nowhere?key=abc123"), now=T0)

    assert (result.status, result.requests) == ("failed", 1)
    assert result.message.startswith(f"Fetching {source.url}/nowhere?key=... failed: the source answered 404 Not "
                                     "Found on page 1; check fetch_url (set fetch_url in env.yaml or HELPERS_FETCH_URL)")
    assert "abc123" not in result.message  # query values may be secrets


@pytest.mark.parametrize("corrupt", [
    lambda state: "{not json",
    lambda state: "[]",
    lambda state: json.dumps({**state, "consecutive_failures": "many"}),
    lambda state: json.dumps({**state, "etag": 7}),
    lambda state: json.dumps({**state, "breaker_open_until": "next tuesday"}),
    lambda state: b"\xff\xfe not text",
])
def test_a_corrupt_state_file_counts_as_empty_and_is_rewritten(source, make_settings, corrupt):
    source.on("/data", Answer(body=CSV_1, headers={"ETag": '"v1"'}))
    settings = make_settings(f"{source.url}/data")
    fetch_to_inbox(settings, now=T0)
    path = settings.inbox_dir / STATE_FILE
    damaged = corrupt(json.loads(path.read_text()))
    path.write_bytes(damaged) if isinstance(damaged, bytes) else path.write_text(damaged)

    result = fetch_to_inbox(settings, now=T0 + timedelta(hours=1))

    assert result.status == "fetched"
    assert "if-none-match" not in source.seen[1].headers
    assert re.search(r"The fetch state \S+\.fetch-state\.json could not be used \(.+\), so this fetch started from "
                     r"none: no conditional request, circuit breaker closed\.$", result.message)
    assert json.loads(path.read_text())["etag"] == '"v1"'


def test_a_state_that_cannot_be_read_or_saved_is_said_and_the_fetch_stands(source, make_settings):
    source.on("/data", Answer(body=CSV_1))
    settings = make_settings(f"{source.url}/data")
    (settings.inbox_dir / STATE_FILE).mkdir(parents=True)

    result = fetch_to_inbox(settings, now=T0)

    assert result.status == "fetched" and len(result.files) == 1
    assert "could not be used (Is a directory)" in result.message
    assert "The fetch state could not be saved to" in result.message and "make inbox_dir writable" in result.message


def test_an_inbox_that_cannot_be_written_fails_without_blaming_the_source(source, make_settings, tmp_path):
    source.on("/data", Answer(body=CSV_1))
    not_a_folder = tmp_path / "inbox.txt"
    not_a_folder.write_text("")

    result = fetch_to_inbox(make_settings(f"{source.url}/data", inbox_dir=str(not_a_folder)), now=T0)

    assert result.status == "failed"
    assert f"Fetched {source.url}/data but could not write {not_a_folder}/fetched-" in result.message
    assert "make inbox_dir a folder this user can write" in result.message


def test_a_source_without_rows_writes_nothing(source, make_settings):
    source.on("/data", Answer(body="timestamp,demand\n"))
    settings = make_settings(f"{source.url}/data")

    result = fetch_to_inbox(settings, now=T0)

    assert (result.status, result.files, result.rows, result.pages) == ("fetched", [], 0, 1)
    assert result.message == f"{source.url}/data sent no rows (1 page); nothing was written."
    assert inbox_files(settings) == [STATE_FILE]


def test_two_fetches_at_the_same_time_write_two_files(source, make_settings):
    source.on("/data", Answer(body=CSV_1))
    settings = make_settings(f"{source.url}/data")

    names = [fetch_to_inbox(settings, now=T0).files[0].name for _ in range(2)]

    assert names == ["fetched-20240501T120000.000000Z.csv", "fetched-20240501T120000.000000Z-2.csv"]


def test_csv_pages_with_different_columns_are_not_joined(source, make_settings):
    source.on("/data", Answer(body=CSV_1, headers={"Link": '</data?page=2>; rel="next"'}))
    source.on("/data?page=2", Answer(body="timestamp,load\n2024-05-01T02:00,12\n"))

    result = fetch_to_inbox(make_settings(f"{source.url}/data"), now=T0)

    assert result.status == "failed"
    assert "page 2's columns (timestamp,load) differ from page 1's (timestamp,demand)" in result.message


def test_a_next_link_that_loops_fails(source, make_settings):
    source.on("/data", Answer(body=CSV_1, headers={"Link": '</data?page=2>; rel="next"'}))
    source.on("/data?page=2", Answer(body=CSV_1, headers={"Link": '</data>; rel="next"'}))

    result = fetch_to_inbox(make_settings(f"{source.url}/data"), now=T0)

    assert (result.status, result.requests) == ("failed", 2)
    assert f"page 3's next link leads back to {source.url}/data, a page already fetched" in result.message


@pytest.mark.parametrize("body", ["<html>oops</html>", {"rows": []}, [1, 2], {"data": [], "next": 5}])
def test_json_that_is_not_records_fails_and_says_what_is_expected(source, make_settings, body):
    source.on("/items", Answer(body=body))

    result = fetch_to_inbox(make_settings(f"{source.url}/items", fetch_format="json"), now=T0)

    assert result.status == "failed"
    assert "page 1 is not JSON records (a list of objects, or {\"data\": [...], \"next\": ...}); if the source " \
           "sends CSV, set fetch_format to csv" in result.message


def test_no_fetch_url_means_no_fetch(make_settings):
    result = fetch_to_inbox(make_settings(""))

    assert (result.status, result.requests, result.files) == ("disabled", 0, [])
    assert "set fetch_url in env.yaml or HELPERS_FETCH_URL" in result.message


def test_now_must_carry_its_timezone(make_settings, source):
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        fetch_to_inbox(make_settings(f"{source.url}/data"), now=datetime(2024, 5, 1))
    assert source.seen == []


def test_redact_hides_user_information_and_query_values():
    assert redact("https://user:pw@[::1]:8443/v1/data?page=2&api_key=abc#top") == \
        "https://[::1]:8443/v1/data?page=...&api_key=..."
    assert redact("http://example.com/data") == "http://example.com/data"


def test_the_command_line_prints_the_message_and_exits_by_status(source, make_settings, tmp_path, capsys):
    make_settings("")  # clears the token variable and HELPERS_* settings
    source.on("/data", Answer(body=CSV_1))
    source.on("/down", Answer(404))
    inbox = str(tmp_path / "inbox")

    assert main(["--url", f"{source.url}/data", "--inbox", inbox]) == 0
    assert capsys.readouterr().out.startswith("Fetched 2 rows in 1 page")
    assert main(["--url", f"{source.url}/down", "--inbox", inbox]) == 1
    assert "404 Not Found" in capsys.readouterr().err
    assert main(["--url", "ftp://example.com/data"]) == 2
    assert "fetch_url must be an http:// or https:// address" in capsys.readouterr().err
