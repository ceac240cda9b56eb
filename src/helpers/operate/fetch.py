"""Pulling new data from the configured HTTP source into the inbox: the first step of a cycle.

A cycle runs fetch -> intake of the inbox -> refit -> forecast -> monitoring -> alerts.
:func:`fetch_to_inbox` asks ``fetch_url`` for its data and writes all pages of one fetch
into one CSV file in ``inbox_dir``, where the intake picks it up.

- **Pages.** The next page is the ``Link: <...>; rel="next"`` header (RFC 8288) or, for
  JSON, a top-level ``"next"`` URL. A JSON page is a list of records or
  ``{"data": [...], "next": ...}``; it is written as CSV, so the inbox only holds CSV. A
  CSV page after the first loses its header line, which must repeat the first page's.
- **One file, whole or not at all.** ``fetched-<UTC time>.csv`` is written under a dot-name
  in the inbox and renamed (:func:`helpers.core.files.write_atomic`); the intake skips
  dot-files, so it never reads half a fetch. A fetch without rows writes nothing.
- **Conditional requests.** The first page's ``ETag`` and ``Last-Modified`` are kept and sent
  back as ``If-None-Match`` / ``If-Modified-Since``; a 304 means the source has not changed
  since, and nothing is written.
- **Retries** (tenacity). A timeout, a dropped connection, a 429 or a 5xx is retried up to
  ``fetch_retries`` times, pausing ``fetch_backoff_seconds`` doubled at each retry plus up to
  as much again at random (the jitter keeps many clients from retrying in step). A
  ``Retry-After`` header (seconds or an HTTP date) is waited exactly, up to
  :data:`MAX_WAIT_SECONDS`. Other 4xx are not retried: asking again gets the same answer.
- **Circuit breaker.** After ``fetch_breaker_failures`` failed fetches in a row (across
  cycles) no request is made for ``fetch_breaker_cooldown_seconds``, so a source that is down
  is not hammered by every cycle. Then one trial fetch runs (half-open): success closes the
  breaker, failure opens it again.
- **Credentials** come from the environment only: the variable named by ``fetch_token_env``
  holds a bearer token. It is sent only to ``fetch_url``'s own scheme, host and port (not to a
  next link elsewhere), and never written to a message, a log line or the state file. URLs
  in messages show neither user information nor query values.

The ETag, Last-Modified and the breaker's count live in ``<inbox_dir>/.fetch-state.json``,
keyed by a hash of ``fetch_url`` and ``fetch_format``, so a changed source starts afresh. A
state file that cannot be read counts as empty, and the message says so.

Network trouble never raises: it is a :class:`FetchResult` with status ``"failed"`` whose
message names the URL, what happened and the setting to change. A bug still raises.

Command: ``python -m helpers.operate.fetch`` prints the message; exit 0 unless it failed.
"""

from __future__ import annotations

import argparse
import email.utils
import functools
import hashlib
import json
import logging
import os
import ssl
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
import pandas as pd
import tenacity

from helpers.core.files import write_atomic
from helpers.core.settings import ConfigError, Settings, load_settings, where

log = logging.getLogger(__name__)

FetchStatus = Literal["disabled", "fetched", "unchanged", "skipped_breaker_open", "failed"]
#: The state file in ``inbox_dir`` (a dot-file, so the intake skips it).
STATE_FILE = ".fetch-state.json"
#: The longest pause between two attempts; a longer ``Retry-After`` is cut to it and the message says so.
MAX_WAIT_SECONDS = 300.0
_ACCEPT = {"csv": "text/csv", "json": "application/json"}


@dataclass(frozen=True)
class FetchResult:
    """What one fetch did.

    ``status``: ``disabled`` (no ``fetch_url``), ``fetched`` (the source answered; ``files``
    holds the file written, none when it had no rows), ``unchanged`` (304: nothing
    written), ``skipped_breaker_open`` (no request made) or ``failed``. ``pages`` and
    ``rows`` count what was received (CSV rows are the non-blank lines after the header),
    ``requests`` every HTTP request including retries. ``message`` is for the person on
    call: what happened and, when something is wrong, which setting to change.
    """

    status: FetchStatus
    message: str
    files: list[Path] = field(default_factory=list)
    pages: int = 0
    rows: int = 0
    requests: int = 0


class _Failed(Exception):
    """A fetch that cannot finish; ``str()`` says what happened and what to change."""


class _RetryableStatus(Exception):
    """A 429 or 5xx answer, raised inside an attempt so that tenacity retries it."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} {response.reason_phrase}")
        self.status_code = response.status_code
        self.retry_after = _retry_after_seconds(response)


@dataclass
class _State:
    """What one fetch leaves for the next (``STATE_FILE``)."""

    source: str
    etag: str | None = None
    last_modified: str | None = None
    failures: int = 0
    open_until: datetime | None = None
    last_error: str | None = None

    def to_json(self) -> str:
        return json.dumps({
            "source": self.source, "etag": self.etag, "last_modified": self.last_modified,
            "consecutive_failures": self.failures, "last_error": self.last_error,
            "breaker_open_until": self.open_until.isoformat() if self.open_until else None,
        }, indent=1)


@dataclass
class _Tally:
    """Counts and notes gathered while a fetch runs, for its result."""

    requests: int = 0
    notes: list[str] = field(default_factory=list)


def fetch_to_inbox(settings: Settings, now: datetime | None = None) -> FetchResult:
    """Fetch the new data of ``settings.fetch_url`` into ``settings.inbox_dir`` (see the module docstring).

    ``now`` is the time of this fetch (timezone-aware; default the clock): it names the file
    and times the circuit breaker. Returns a :class:`FetchResult`; network trouble is a
    result with status ``"failed"``, never an exception.
    """
    if settings.fetch_url is None:
        return FetchResult("disabled", "No fetch: fetch_url is empty; to fetch new data each cycle, "
                                       f"{where('fetch_url')} to the source's http(s) address.")
    now = _utc(now)
    shown = redact(settings.fetch_url)
    state_path = settings.inbox_dir / STATE_FILE
    state, note = _read_state(state_path, _source_key(settings))
    if state.open_until is not None and now < state.open_until:
        return FetchResult("skipped_breaker_open", (
            f"Skipped fetching {shown}: the circuit breaker is open after {state.failures} failed fetches in a row "
            f"(last: {state.last_error}) until {_clock(state.open_until)}, then one trial fetch runs; fix the source, "
            f"or delete {state_path} to try at once (fetch_breaker_cooldown_seconds sets the pause)."))
    tally = _Tally(notes=[note] if note else [])
    try:
        pages = _fetch_pages(settings, state, tally)
    except _Failed as exc:
        return _failure(settings, state, state_path, str(exc), now, tally)
    state.failures, state.open_until, state.last_error = 0, None, None
    if pages is None:
        tally.notes.extend(_save_state(state_path, state))
        return _result("unchanged", f"{shown} has not changed since the last fetch (304 Not Modified); nothing "
                                    "was written.", tally)
    text, rows = pages.table()
    files = []
    if rows:
        path = _free_name(settings.inbox_dir, now)
        try:
            write_atomic(path, text)
        except OSError as exc:  # not the source's fault: the breaker does not count it, the state stays as it was
            return _result("failed", (
                f"Fetched {shown} but could not write {path} ({exc.strerror or exc}); make inbox_dir a folder this "
                f"user can write ({where('inbox_dir')}); the next cycle fetches it again."), tally, pages.count, rows)
        files.append(path)
    state.etag, state.last_modified = pages.etag, pages.last_modified
    tally.notes.extend(_save_state(state_path, state))
    page_word = "page" if pages.count == 1 else "pages"
    said = (f"Fetched {rows} rows in {pages.count} {page_word} from {shown} into {files[0]}." if files
            else f"{shown} sent no rows ({pages.count} {page_word}); nothing was written.")
    return _result("fetched", said, tally, pages.count, rows, files)


def redact(url: str) -> str:
    """``url`` fit for a message or a log: no user information, query values replaced by ``...``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    query = "&".join(f"{key}=..." for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@dataclass
class _Pages:
    """The pages of one fetch and the first page's validators."""

    fetch_format: str
    bodies: list[Any] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None

    @property
    def count(self) -> int:
        return len(self.bodies)

    def table(self) -> tuple[str, int]:
        """All pages as one CSV text, and its number of rows."""
        if self.fetch_format == "json":
            records = [record for page in self.bodies for record in page]
            # object dtype keeps values as the source sent them (no 3 -> 3.0 when a value is missing)
            text = pd.DataFrame(records, dtype=object).to_csv(index=False, lineterminator="\n") if records else ""
            return text, len(records)
        # the first page's header line, then every page's data lines (checked to share it in _read_page)
        chunks, rows = [self.bodies[0].partition("\n")[0] + "\n"], 0
        for body in self.bodies:
            rest = body.partition("\n")[2]
            rows += sum(1 for line in rest.split("\n") if line.strip())
            chunks.append(rest if rest.endswith("\n") or not rest else rest + "\n")
        return "".join(chunks), rows


def _split_header(text: str) -> tuple[str, str]:
    """A CSV page's header line (without BOM and line end) and the rest."""
    head, _, rest = text.partition("\n")
    return head.rstrip("\r").lstrip("\ufeff"), rest


def _fetch_pages(settings: Settings, state: _State, tally: _Tally) -> _Pages | None:
    """Every page from ``fetch_url`` on, or ``None`` when the source answers 304 Not Modified."""
    start = str(settings.fetch_url)
    origin = _origin(start)
    token = os.environ.get(settings.fetch_token_env) or None
    pages = _Pages(settings.fetch_format)
    seen: set[str] = set()
    url: str | None = start
    with httpx.Client(timeout=settings.fetch_timeout_seconds, follow_redirects=True, verify=_tls()) as client:
        while url is not None:
            number = pages.count + 1
            if url in seen:
                raise _Failed(f"page {number}'s next link leads back to {redact(url)}, a page already fetched, so the "
                              "source's pagination is broken; fix the source")
            seen.add(url)
            headers = {"Accept": _ACCEPT[settings.fetch_format]}
            if token and _origin(url) == origin:
                headers["Authorization"] = f"Bearer {token}"
            if number == 1 and state.etag:
                headers["If-None-Match"] = state.etag
            if number == 1 and state.last_modified:
                headers["If-Modified-Since"] = state.last_modified
            response = _get(client, url, headers, settings, tally)
            if response.status_code == 304 and number == 1:
                return None
            _check_answer(response, number, settings, token)
            if number == 1:
                pages.etag, pages.last_modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
            body, url = _read_page(response, number, settings.fetch_format, pages)
            pages.bodies.append(body)
    return pages


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's certificate-checking TLS set-up, made once: loading the CA bundle costs ~0.1 s a client."""
    return httpx.create_ssl_context()


def _get(client: httpx.Client, url: str, headers: dict[str, str], settings: Settings,
         tally: _Tally) -> httpx.Response:
    """One GET, retried on timeouts, dropped connections, 429 and 5xx (see the module docstring)."""
    attempts = 0

    def attempt() -> httpx.Response:
        nonlocal attempts
        attempts += 1
        tally.requests += 1
        response = client.get(url, headers=headers)
        if response.status_code == 429 or response.status_code >= 500:
            raise _RetryableStatus(response)
        return response

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_retryable),
        stop=tenacity.stop_after_attempt(settings.fetch_retries + 1),
        wait=_wait(settings.fetch_backoff_seconds, tally),
        before_sleep=_log_retry(url, settings.fetch_retries),
        reraise=True,
    )
    tries = _attempts(settings.fetch_retries + 1)
    try:
        return retrying(attempt)
    except _RetryableStatus as exc:
        if exc.status_code == 429:
            raise _Failed(f"the source answered 429 Too Many Requests ({tries}); fetch less often, or raise "
                          f"fetch_retries (now {settings.fetch_retries}) or fetch_backoff_seconds (now "
                          f"{settings.fetch_backoff_seconds:g}) ({where('fetch_retries')})") from None
        raise _Failed(f"the source answered {exc} ({tries}), a fault on its side; check the source's status, "
                      f"or raise fetch_retries (now {settings.fetch_retries}) to wait longer for it "
                      f"({where('fetch_retries')})") from None
    except httpx.TimeoutException as exc:
        raise _Failed(f"no answer within fetch_timeout_seconds={settings.fetch_timeout_seconds:g} s "
                      f"({type(exc).__name__}, {tries}); check that the source is up, or raise fetch_timeout_seconds "
                      f"({where('fetch_timeout_seconds')})") from None
    except httpx.RequestError as exc:
        raise _Failed(f"the request failed after {_attempts(attempts)} ({type(exc).__name__}: {exc}); check "
                      f"fetch_url and that the source is reachable from this machine ({where('fetch_url')})") from None


def _attempts(n: int) -> str:
    """``1 attempt`` / ``3 attempts``."""
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def _retryable(exc: BaseException) -> bool:
    """Worth asking again: the source is busy or failing, or the network dropped the request."""
    return isinstance(exc, (_RetryableStatus, httpx.TimeoutException, httpx.NetworkError,
                            httpx.RemoteProtocolError))


def _wait(backoff: float, tally: _Tally) -> Callable[[tenacity.RetryCallState], float]:
    """The pause before the next attempt: the server's Retry-After, else exponential backoff with jitter."""
    exponential = tenacity.wait_exponential_jitter(multiplier=backoff, max=max(MAX_WAIT_SECONDS, backoff), jitter=backoff)

    def wait(retry_state: tenacity.RetryCallState) -> float:
        asked = getattr(retry_state.outcome.exception(), "retry_after", None)
        if asked is None:
            return exponential(retry_state)
        if asked > MAX_WAIT_SECONDS:
            tally.notes.append(f"The source asked to wait {asked:g} s (Retry-After); this fetch waited "
                               f"{MAX_WAIT_SECONDS:g} s, the longest it waits.")
            return MAX_WAIT_SECONDS
        return asked

    return wait


def _log_retry(url: str, retries: int) -> Callable[[tenacity.RetryCallState], None]:
    shown = redact(url)

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception()
        log.warning("fetch: %s: %s; retry %d of %d in %.2f s", shown, str(exc) or type(exc).__name__,
                    retry_state.attempt_number, retries, retry_state.upcoming_sleep)

    return before_sleep


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds from now (RFC 9110: delay seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    # measured from the server's own Date header when it sent one, so clock skew does not matter
    base = _http_date(response.headers.get("Date", "")) or datetime.now(timezone.utc)
    return max(0.0, (when - base).total_seconds())


def _http_date(text: str) -> datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _check_answer(response: httpx.Response, number: int, settings: Settings, token: str | None) -> None:
    """Raise :class:`_Failed` unless ``response`` is a page (2xx); 429 and 5xx never get here."""
    if response.is_success:
        return
    answer = f"{response.status_code} {response.reason_phrase}"
    if response.status_code in (401, 403):
        name = settings.fetch_token_env
        token_state = (f"{name} is not set" if token is None
                       else f"the source did not accept the token in {name}")
        raise _Failed(f"the source refused access ({answer}) on page {number}: {token_state}; put a valid bearer "
                      f"token in the environment variable {name}, or name another variable in fetch_token_env "
                      f"({where('fetch_token_env')})")
    raise _Failed(f"the source answered {answer} on page {number}; check fetch_url ({where('fetch_url')})")


def _read_page(response: httpx.Response, number: int, fetch_format: str, pages: _Pages) -> tuple[Any, str | None]:
    """A page's body (CSV text, or JSON records) and the absolute URL of the next page, if any."""
    link = response.links.get("next", {}).get("url")
    if fetch_format == "csv":
        text = response.text
        if number > 1:
            header, first = _split_header(text)[0], _split_header(pages.bodies[0])[0]
            if header and header != first:
                raise _Failed(f"page {number}'s columns ({header}) differ from page 1's ({first}), so the pages "
                              "cannot be joined into one file; fix the source")
        return text, _absolute(response, link)
    shape = (f"page {number} is not JSON records (a list of objects, or {{\"data\": [...], \"next\": ...}}); "
             f"if the source sends CSV, set fetch_format to csv ({where('fetch_format')})")
    try:
        body = response.json()
    except ValueError:
        raise _Failed(shape) from None
    following = None
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        body, following = body["data"], body.get("next")
    if not isinstance(body, list) or not all(isinstance(r, dict) for r in body) \
            or not isinstance(following, (str, type(None))):
        raise _Failed(shape)
    return body, _absolute(response, link or following or None)


def _absolute(response: httpx.Response, link: str | None) -> str | None:
    """``link`` resolved against the page it came from (a next link may be relative)."""
    return None if link is None else str(response.url.join(link))


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: where a bearer token may be sent."""
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


def _failure(settings: Settings, state: _State, state_path: Path, reason: str, now: datetime,
             tally: _Tally) -> FetchResult:
    """Count a failed fetch towards the circuit breaker, save that, and say what happened."""
    state.failures += 1
    state.last_error = reason.partition(";")[0]  # what happened; the advice follows in the failure's own message
    limit = settings.fetch_breaker_failures
    if state.failures >= limit:
        state.open_until = now + timedelta(seconds=settings.fetch_breaker_cooldown_seconds)
        breaker = (f"the circuit breaker is now open after {state.failures} failed fetches in a row, so no fetch is "
                   f"tried until {_clock(state.open_until)} (fetch_breaker_cooldown_seconds="
                   f"{settings.fetch_breaker_cooldown_seconds:g})")
    else:
        breaker = (f"{state.failures} of {limit} failed fetches in a row before the circuit breaker opens "
                   "(fetch_breaker_failures)")
    tally.notes.extend(_save_state(state_path, state))
    return _result("failed", f"Fetching {redact(str(settings.fetch_url))} failed: {reason}; {breaker}.", tally)


def _result(status: FetchStatus, message: str, tally: _Tally, pages: int = 0, rows: int = 0,
            files: list[Path] | None = None) -> FetchResult:
    return FetchResult(status, " ".join([message, *tally.notes]), files or [], pages, rows, tally.requests)


def _source_key(settings: Settings) -> str:
    """A hash of what is fetched: the state of another URL or format is not used (and no URL secret is stored)."""
    return hashlib.sha256(f"{settings.fetch_format} {settings.fetch_url}".encode()).hexdigest()[:16]


def _read_state(path: Path, source: str) -> tuple[_State, str | None]:
    """The saved state of ``source``; an empty one (and a note saying why) when the file cannot be used."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        if raw.get("source") != source:
            return _State(source), None
        failures = raw.get("consecutive_failures", 0)
        if not isinstance(failures, int) or isinstance(failures, bool) or failures < 0:
            raise ValueError(f"consecutive_failures is {failures!r}, not a whole number")
        until = raw.get("breaker_open_until")
        open_until = _utc(datetime.fromisoformat(until)) if until is not None else None
        texts = {key: raw.get(key) for key in ("etag", "last_modified", "last_error")}
        if any(not isinstance(value, (str, type(None))) for value in texts.values()):
            raise ValueError("etag, last_modified and last_error must be text")
        return _State(source, failures=failures, open_until=open_until, **texts), None
    except FileNotFoundError:
        return _State(source), None
    except (OSError, ValueError, TypeError) as exc:  # unreadable, not JSON, or not the shape written above
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return _State(source), (f"The fetch state {path} could not be used ({reason}), so this fetch started from "
                                "none: no conditional request, circuit breaker closed.")


def _save_state(path: Path, state: _State) -> list[str]:
    """Save ``state``; a note for the message when that fails (the fetch itself stands)."""
    try:
        write_atomic(path, state.to_json())
    except OSError as exc:
        return [f"The fetch state could not be saved to {path} ({exc.strerror or exc}), so the next fetch is not "
                f"conditional and the circuit breaker forgets this one; make inbox_dir writable ({where('inbox_dir')})."]
    return []


def _free_name(folder: Path, now: datetime) -> Path:
    """``fetched-<UTC time>.csv`` in ``folder``, numbered when a file of that name is already there."""
    stem = f"fetched-{now:%Y%m%dT%H%M%S.%fZ}"
    path, number = folder / f"{stem}.csv", 1
    while path.exists():
        number += 1
        path = folder / f"{stem}-{number}.csv"
    return path


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware (e.g. datetime.now(timezone.utc)), got {now!r}")
    return now.astimezone(timezone.utc)


def _clock(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.operate.fetch",
        description="Fetch new data from fetch_url into inbox_dir, as a cycle's first step does. Options left out "
                    "come from env.yaml (or HELPERS_<KEY> variables); the bearer token only from the environment "
                    "variable named by fetch_token_env. Exit 0 when fetched, unchanged, disabled or skipped; 1 when "
                    "the fetch failed; 2 when a setting is not valid.",
    )
    parser.add_argument("--url", dest="fetch_url", help="the source's http(s) address (fetch_url)")
    parser.add_argument("--format", dest="fetch_format", choices=("csv", "json"), help="what it returns")
    parser.add_argument("--inbox", dest="inbox_dir", help="the folder to write into (inbox_dir)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line: fetch once and print the result's message."""
    args = vars(_parser().parse_args(argv))
    try:
        settings = load_settings(**args)
    except ConfigError as exc:
        print(f"error: {exc}\nnothing was fetched.", file=sys.stderr)
        return 2
    result = fetch_to_inbox(settings)
    print(result.message, file=sys.stderr if result.status == "failed" else sys.stdout)
    return 1 if result.status == "failed" else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
