"""The forecast log: every forecast the system issues, kept in the warehouse's ``forecast_log``.

Three sources write it:

- ``scheduled``: the forecasts each cycle makes from the latest data, inserted straight into
  the warehouse by :func:`log_scheduled` (the cycle holds the warehouse anyway);
- ``api`` and ``webapp``: every forecast ``POST /predict`` serves, ``webapp`` when the client
  said it is the dashboard (header ``X-Request-Source: webapp``; :data:`REQUEST_SOURCES`). The
  service keeps one writer per source. The service must not open the warehouse
  (DuckDB allows one writing process per file), so :class:`ForecastLogWriter` appends them
  to files of its own in ``forecast_log_dir``, and each cycle folds the closed files in
  (:func:`fold_logs`).

The files and their life
------------------------
A writer appends JSON lines to ``<source>-<pid>-<start>-<token>-<n>.open``, a file no other
process writes, and holds an exclusive ``flock`` on it while it is open. Every
``rotate_seconds`` (or ``rotate_bytes``), and when the service stops, it fsyncs the file,
renames it to ``.jsonl`` and starts a new one at its next write. A ``.jsonl`` file is
therefore complete and never written again: the fold reads only those, so it never folds
half a batch, however the writer and the fold interleave. A writer that died leaves an
``.open`` file whose lock nobody holds (the kernel drops it with the process): the fold
renames such a file to ``.jsonl`` and folds it, and skips a last line the writer left torn.
A new file is created as ``.new``, locked, then renamed to ``.open``, so the fold never
meets an ``.open`` file whose writer has not locked it yet.

The fold inserts the rows of the closed files whose ``prediction_id`` is not in
``forecast_log`` yet, rewrites the predictions snapshot, and only then deletes the files. A
fold stopped anywhere is repeated by the next one without adding a row twice, and every
row is at every moment in the snapshot or in a file, the two places ``GET /predictions``
reads (:class:`PredictionReader`).

One line is one issued forecast: the fields its steps share once, the steps as lists::

    {"id": "<32 hex>", "source": "api", "series_id", "issued_at": "...Z", "model",
     "model_version", "fitted_until": "YYYY-MM-DD", "target_date": [...], "horizon_step": [...],
     "forecast": [...], "lower_80": [...], "upper_80": [...], "lower_95": [...], "upper_95": [...]}

and step ``k`` is the row ``prediction_id = "<id>-<horizon_step[k]>"``. Writing a request's
steps as one line instead of one line per row is what keeps the log off the request path:
``POST /predict`` only appends a tuple (0.3 us; building 14 row dicts took 38 us), and the
flusher serialises one small object per request.

This module imports neither pandas nor DuckDB at load time: the service uses the writer and
the reader; the fold and the snapshot (run by the cycle) import them when called.
"""

from __future__ import annotations

import asyncio
import binascii
import fcntl
import hashlib
import os
import random
import secrets
import sys
import threading
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pandas as pd

    from helpers.warehouse import Warehouse

SOURCES = ("api", "scheduled", "webapp")
#: The sources a client of ``POST /predict`` may name (``X-Request-Source``); ``api`` when it names none.
REQUEST_SOURCES = ("api", "webapp")
SNAPSHOT_NAME = "predictions.json"
#: The warehouse table's columns (``TABLE_COLUMNS["forecast_log"]``, repeated here so the
#: service need not import the warehouse client and pandas with it).
LOG_COLUMNS = ("prediction_id", "source", "series_id", "issued_at", "model", "model_version", "fitted_until",
               "target_date", "horizon_step", "forecast", "lower_80", "upper_80", "lower_95", "upper_95")
#: What ``GET /predictions`` returns per row: the log's columns and the actual value of the day.
PREDICTION_COLUMNS = (*LOG_COLUMNS, "actual")
ISSUE_FIELDS = ("source", "series_id", "issued_at", "model", "model_version", "fitted_until")
STEP_FIELDS = ("target_date", "horizon_step", "forecast", "lower_80", "upper_80", "lower_95", "upper_95")
#: Issued forecasts written per step of the flusher before it lets the event loop serve
#: requests again (well under 1 ms of work), so a busy second's backlog never stalls /predict.
FLUSH_CHUNK = 128
#: Serialised slices the writer keeps (about 1 kB each).
SLICE_CACHE = 4096
#: Forecast paths a writer numbers (a service records slices of one path per model); a queued
#: record names its path by number, so it holds no object the garbage collector must follow.
PATH_NUMBERS = 1024
#: Rows per insert when folding a backlog of files.
FOLD_BATCH_ROWS = 500_000


@dataclass(frozen=True)
class ForecastPath:
    """One model's forecast day by day, as a service serves it; a request issues a slice of it.

    ``fitted_until`` is the last day of data the model saw (YYYY-MM-DD); ``horizon_step[k]``
    is the number of days from it to ``target_date[k]``. The bound lists may be ``None``.
    """

    series_id: str
    model: str
    model_version: str
    fitted_until: str
    target_date: list[str]
    horizon_step: list[int]
    forecast: list[float]
    lower_80: list[float] | None = None
    upper_80: list[float] | None = None
    lower_95: list[float] | None = None
    upper_95: list[float] | None = None


def _part(values: list[float] | None, start: int, stop: int) -> list[float] | None:
    return None if values is None else values[start:stop]


class ForecastLogWriter:
    """Appends the forecasts a service issues to its own log files, in batches off the request path.

    :meth:`record` only appends to an in-memory queue (thread-safe, no I/O). :meth:`run` is
    the flusher, an asyncio task of the service's lifespan: every ``flush_seconds`` it writes
    the queue as JSON lines, a chunk at a time, and rotates the file when it is due (see the
    module docstring). A failed write (disk full, no permission) never reaches a request:
    its rows are counted in :attr:`dropped_rows`, one line on stderr says so (and another
    when writing works again), and :meth:`stats` shows both in ``GET /health``.
    """

    def __init__(self, log_dir: str | os.PathLike[str], flush_seconds: float = 1.0, rotate_seconds: float = 60.0,
                 rotate_bytes: int = 64 << 20, source: str = "api") -> None:
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        if flush_seconds <= 0 or rotate_seconds <= 0 or rotate_bytes <= 0:
            raise ValueError("flush_seconds, rotate_seconds and rotate_bytes must be positive, got "
                             f"{flush_seconds!r}, {rotate_seconds!r}, {rotate_bytes!r}")
        self.log_dir = Path(log_dir)
        self.flush_seconds = flush_seconds
        self.rotate_seconds = rotate_seconds
        self.rotate_bytes = rotate_bytes
        self.source = source
        self.written_rows = 0
        self.dropped_rows = 0
        self.last_error: str | None = None
        # (issued_at, the path's number in _paths, or the path itself past PATH_NUMBERS, start, stop)
        self._pending: deque[tuple[float, int | ForecastPath, int, int]] = deque()
        self._paths: list[ForecastPath] = []
        self._numbers: dict[int, int] = {}  # id(path) -> its index in _paths (which keeps the path alive)
        self._numbering = threading.Lock()
        self._lock = threading.Lock()  # one flush or rotation at a time; record() never takes it
        self._stop = threading.Event()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._opened = 0.0
        self._files = 0
        started = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self._stem = f"{source}-{os.getpid()}-{started}-{secrets.token_hex(3)}"
        self._ids = random.Random(secrets.randbits(128))  # 128-bit ids, 20x cheaper than uuid4()
        self._second, self._second_text = -1, b""
        self._slices: dict[tuple[int, int, int], tuple[ForecastPath, bytes]] = {}
        self._failing = False

    # -- the request path --------------------------------------------------------------------
    def record(self, path: ForecastPath, start: int, stop: int, issued_at: float | None = None) -> None:
        """Log that ``path[start:stop]`` was issued at ``issued_at`` (seconds since the epoch; now).

        The queued record is a tuple of numbers only, which the garbage collector stops
        following at its first pass: a second of records (10,000 at the bench's rate) holding
        the path itself kept each middle-generation collection walking them (2 ms on average,
        up to 9 ms, the event loop stopped meanwhile).
        """
        number = self._numbers.get(id(path))
        if number is None or self._paths[number] is not path:
            number = self._number(path)
        self._pending.append((time.time() if issued_at is None else issued_at, number, start, stop))

    def _number(self, path: ForecastPath) -> int | ForecastPath:
        """``path``'s number (given at its first record), or the path itself once
        :data:`PATH_NUMBERS` paths are numbered."""
        with self._numbering:
            number = self._numbers.get(id(path))
            if number is not None and self._paths[number] is path:
                return number
            if len(self._paths) >= PATH_NUMBERS:
                return path
            self._paths.append(path)
            self._numbers[id(path)] = len(self._paths) - 1
            return len(self._paths) - 1

    @property
    def pending(self) -> int:
        """Issued forecasts recorded but not written yet."""
        return len(self._pending)

    # -- writing -----------------------------------------------------------------------------
    def flush(self, limit: int | None = None) -> int:
        """Write up to ``limit`` recorded forecasts (default: all) to the current file; returns the rows written."""
        with self._lock:
            count = len(self._pending) if limit is None else min(limit, len(self._pending))
            if count == 0:
                return 0
            batch = [self._pending.popleft() for _ in range(count)]
            rows = sum(stop - start for _, _, start, stop in batch)
            try:
                self._append(b"".join(self._pieces(batch)))
            except (OSError, TypeError) as exc:  # TypeError: orjson could not encode a value
                self._dropped(rows, exc)
                return 0
            self.written_rows += rows
            if self._failing:
                self._failing = False
                _say(f"forecast log: writing to {self.log_dir} again ({self.dropped_rows} rows dropped so far)")
            return rows

    def rotation_due(self) -> bool:
        """Whether the current file is older than ``rotate_seconds`` or larger than ``rotate_bytes``."""
        return self._fd is not None and (self._size >= self.rotate_bytes
                                         or time.monotonic() - self._opened >= self.rotate_seconds)

    def rotate(self) -> Path | None:
        """Close the current file: fsync it and rename it to ``.jsonl``, ready to fold; returns that path.

        The next write starts a new file. Nothing to close: returns ``None``.
        """
        with self._lock:
            fd, path = self._fd, self._path
            self._fd = self._path = None
        if fd is None or path is None:
            return None
        closed = path.with_suffix(".jsonl")
        try:
            os.fsync(fd)
            os.rename(path, closed)
        except OSError as exc:  # the rows are in the file: unlocked once closed, the fold takes it over
            _say(f"forecast log: cannot close {path} ({exc.strerror or exc}); the next fold takes it over")
            return None
        finally:
            os.close(fd)
        return closed

    def close(self) -> None:
        """Write everything recorded and close the current file (the service's shutdown)."""
        self.flush()
        self.rotate()

    def stop(self) -> None:
        """Ask :meth:`run` to finish (from any thread); it closes the writer on its way out."""
        self._stop.set()

    async def run(self) -> None:
        """The flusher: write every ``flush_seconds`` and rotate when due, until :meth:`stop` or
        cancellation; then :meth:`close`."""
        try:
            while not self._stop.is_set():
                await asyncio.sleep(self.flush_seconds)
                while self._pending:
                    self.flush(FLUSH_CHUNK)
                    await asyncio.sleep(0)  # let requests in between chunks
                if self.rotation_due():
                    await asyncio.to_thread(self.rotate)  # the fsync waits for the disk: not in the event loop
        finally:
            self.close()

    def stats(self) -> dict[str, Any]:
        """What ``GET /health`` shows: where the log goes, rows written, dropped and waiting, the last error."""
        return {"dir": str(self.log_dir), "written_rows": self.written_rows, "dropped_rows": self.dropped_rows,
                "pending_forecasts": self.pending, "last_error": self.last_error}

    # -- internals -------------------------------------------------------------------------
    def _pieces(self, batch: list[tuple[float, int | ForecastPath, int, int]]) -> list[bytes]:
        """The log lines of ``batch`` (queued records) as pieces to join: each line's id and
        time, then the rest, which is the same for every request for the same days of the same
        model and so is serialised once (:meth:`_slice`) and joined as it is, not copied into a
        line first. The batch's ids are drawn and hex-encoded at once (1.1 us a line, 2.4 us
        formatting each line whole)."""
        pieces: list[bytes] = []
        extend, paths = pieces.extend, self._paths
        ids = binascii.hexlify(self._ids.randbytes(16 * len(batch)))  # 32 hex digits a line
        at = 0
        for issued_at, number, start, stop in batch:
            path = paths[number] if number.__class__ is int else number
            whole = int(issued_at)
            if whole != self._second:  # the time up to the second is formatted once per second
                self._second = whole
                self._second_text = b'","issued_at":"%s' % time.strftime("%Y-%m-%dT%H:%M:%S",
                                                                         time.gmtime(whole)).encode()
            extend((b'{"id":"', ids[at:at + 32], self._second_text, b'.%06dZ",' % int((issued_at - whole) * 1e6),
                    self._slice(path, start, stop)))
            at += 32
        return pieces

    def _slice(self, path: ForecastPath, start: int, stop: int) -> bytes:
        """``path[start:stop]`` as the JSON members of a line after its id and time (with the
        closing ``}`` and the newline)."""
        key = (id(path), start, stop)
        cached = self._slices.get(key)
        if cached is None or cached[0] is not path:
            if len(self._slices) >= SLICE_CACHE:  # a horizon of n days has n(n+1)/2 slices per model
                self._slices.clear()
            text = orjson.dumps({
                "source": self.source, "series_id": path.series_id, "model": path.model,
                "model_version": path.model_version, "fitted_until": path.fitted_until,
                "target_date": path.target_date[start:stop], "horizon_step": path.horizon_step[start:stop],
                "forecast": path.forecast[start:stop], "lower_80": _part(path.lower_80, start, stop),
                "upper_80": _part(path.upper_80, start, stop), "lower_95": _part(path.lower_95, start, stop),
                "upper_95": _part(path.upper_95, start, stop)})[1:] + b"\n"
            cached = self._slices[key] = (path, text)
        return cached[1]

    def _open(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._files += 1
        stem = f"{self._stem}-{self._files:05d}"
        new, path = self.log_dir / f"{stem}.new", self.log_dir / f"{stem}.open"
        fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)  # the umask decides, as for any file
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(new, path)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._path, self._size, self._opened = fd, path, 0, time.monotonic()

    def _append(self, data: bytes) -> None:
        """Append whole lines or nothing: a write that fails part-way is cut back to where it began."""
        if self._fd is None:
            self._open()
        fd, begin = self._fd, self._size
        assert fd is not None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            try:
                os.ftruncate(fd, begin)
            except OSError:  # cannot cut it back: leave the file to the fold, which skips a torn line
                self._abandon_file()
            raise
        self._size += len(data)

    def _abandon_file(self) -> None:
        """Give up the current file without fsync (called with the lock held, after a failed write)."""
        fd, path = self._fd, self._path
        self._fd = self._path = None
        if fd is not None and path is not None:
            try:
                os.rename(path, path.with_suffix(".jsonl"))
            except OSError:
                pass  # still .open: unlocked once closed, so the fold takes it over
            os.close(fd)

    def _dropped(self, rows: int, exc: OSError) -> None:
        self.dropped_rows += rows
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not self._failing:
            self._failing = True
            _say(f"forecast log: cannot write to {self.log_dir} ({exc.strerror or exc}); dropping the forecasts it "
                 "cannot write, requests are still served (GET /health counts the dropped rows)")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- reading the files --------------------------------------------------------------------
def issue_rows(issue: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows (in :data:`LOG_COLUMNS` order) of one log line."""
    steps = issue["horizon_step"]
    columns = [issue[name] if issue.get(name) is not None else [None] * len(steps) for name in STEP_FIELDS]
    head = tuple(issue[name] for name in ISSUE_FIELDS)
    return [(f"{issue['id']}-{step}", *head, *values) for step, values in zip(steps, zip(*columns))]


def read_rows(data: bytes, where: str) -> list[tuple[Any, ...]]:
    """The rows of the log lines in ``data`` (whole lines); a line that does not parse is skipped
    with one note on stderr naming ``where``."""
    rows, bad = [], 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            rows.extend(issue_rows(orjson.loads(line)))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            bad += 1
    if bad:
        _say(f"forecast log: skipped {bad} unreadable line(s) in {where} (a writer stopped part-way through a line)")
    return rows


def _adopt_orphans(log_dir: Path) -> None:
    """Rename to ``.jsonl`` every ``.open`` file whose writer is gone (its lock is free)."""
    for path in sorted(log_dir.glob("*.open")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # closed by its writer meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live writer holds it
            os.close(fd)
            continue
        try:
            os.rename(path, path.with_suffix(".jsonl"))
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)


# -- the warehouse side (the cycle) ---------------------------------------------------------
def _frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Log rows as a frame of ``forecast_log``'s columns and types, each prediction_id once."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(LOG_COLUMNS)).drop_duplicates("prediction_id", ignore_index=True)
    frame["issued_at"] = pd.to_datetime(frame["issued_at"], utc=True, format="ISO8601").dt.tz_localize(None)
    for column in ("fitted_until", "target_date"):
        frame[column] = pd.to_datetime(frame[column], format="ISO8601")
    frame["horizon_step"] = frame["horizon_step"].astype("int64")
    for column in ("forecast", "lower_80", "upper_80", "lower_95", "upper_95"):
        frame[column] = frame[column].astype("float64")
    return frame


def _insert(warehouse: Warehouse, frame: pd.DataFrame) -> int:
    """Insert the rows of ``frame`` whose prediction_id is not logged yet, in one transaction; returns how many."""
    if frame.empty:
        return 0
    warehouse.execute("create_log_stages")
    try:
        warehouse.load_frame("stage_forecast_log", frame)
        with warehouse.transaction():
            added = int(warehouse.query("count_new_predictions")["n"].iloc[0])
            warehouse.execute("insert_forecast_log")
    finally:
        warehouse.execute("drop_log_stages")
    return added


def fold_logs(warehouse: Warehouse, log_dir: str | os.PathLike[str]) -> int:
    """Fold the service's closed log files into ``forecast_log``; returns the rows added.

    In order: take over the files of writers that died, insert the rows of every ``.jsonl``
    file whose prediction_id is not logged yet (in batches of about :data:`FOLD_BATCH_ROWS`),
    write the predictions snapshot (:func:`write_predictions_snapshot`, naming the folded
    files), then delete the files. Folding again after a stop anywhere adds nothing twice;
    files still being written are left alone (see the module docstring).
    """
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        return 0
    _adopt_orphans(log_dir)
    files = sorted(log_dir.glob("*.jsonl"))
    if not files:
        return 0
    added, batch = 0, []
    for path in files:
        batch.extend(read_rows(path.read_bytes(), str(path)))
        if len(batch) >= FOLD_BATCH_ROWS:
            added += _insert(warehouse, _frame(batch))
            batch = []
    added += _insert(warehouse, _frame(batch)) if batch else 0
    write_predictions_snapshot(warehouse, log_dir / SNAPSHOT_NAME, folded=[path.stem for path in files])
    for path in files:
        path.unlink(missing_ok=True)
    return added


SCHEDULED_COLUMNS = ("series_id", "issued_at", "model", "model_version", "fitted_until", "target_date", "forecast")


def log_scheduled(warehouse: Warehouse, frame: pd.DataFrame) -> int:
    """Insert a cycle's forecasts into ``forecast_log`` as source ``scheduled``; returns the rows added.

    ``frame`` has the columns of :data:`SCHEDULED_COLUMNS` (``issued_at`` in UTC), and may
    have ``horizon_step`` (default: days from ``fitted_until`` to ``target_date``) and the
    bounds ``lower_80``, ``upper_80``, ``lower_95``, ``upper_95``. A forecast is known by its
    series, model, model version, ``fitted_until`` and step: its prediction_id is made from
    them, so logging the same cycle again adds nothing.
    """
    import pandas as pd

    missing = [c for c in SCHEDULED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"log_scheduled needs the columns {list(SCHEDULED_COLUMNS)}; missing {missing} "
                         "(artifact_forecasts builds them from an artifact)")
    if frame.empty:
        return 0
    rows = frame.copy()
    for column in ("issued_at", "fitted_until", "target_date"):
        rows[column] = pd.to_datetime(rows[column], utc=column == "issued_at")
    rows["issued_at"] = rows["issued_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    if "horizon_step" not in rows.columns:
        rows["horizon_step"] = (rows["target_date"].dt.normalize() - rows["fitted_until"].dt.normalize()).dt.days
    for column in ("lower_80", "upper_80", "lower_95", "upper_95"):
        if column not in rows.columns:
            rows[column] = float("nan")
    keys = rows[["series_id", "model", "model_version"]].astype(str).agg("|".join, axis=1) + "|" + \
        rows["fitted_until"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    rows["prediction_id"] = [f"{hashlib.sha256(key.encode()).hexdigest()[:32]}-{step}"
                             for key, step in zip(keys, rows["horizon_step"])]
    rows["source"] = "scheduled"
    return _insert(warehouse, _frame(list(rows[list(LOG_COLUMNS)].itertuples(index=False, name=None))))


def artifact_forecasts(payload: dict[str, Any], issued_at: Any = None) -> pd.DataFrame:
    """Every model's forecast path in a forecast artifact (``helpers.forecast.artifact``) as the
    frame :func:`log_scheduled` takes; ``issued_at`` defaults to now (UTC)."""
    import pandas as pd

    issued = pd.Timestamp.now("UTC") if issued_at is None else pd.Timestamp(issued_at)
    frames = []
    for name, model in payload["models"].items():
        path = model["forecast"]
        frames.append(pd.DataFrame({
            "series_id": payload["series_id"], "issued_at": issued, "model": name,
            "model_version": payload["created_utc"], "fitted_until": pd.Timestamp(payload["training_end"]),
            "target_date": pd.to_datetime(path["ds"]), "forecast": path["mean"],
            "lower_80": path["lo-80"], "upper_80": path["hi-80"], "lower_95": path["lo-95"], "upper_95": path["hi-95"],
        }))
    return pd.concat(frames, ignore_index=True)


def write_predictions_snapshot(warehouse: Warehouse, path: str | os.PathLike[str],
                               folded: Iterable[str] = ()) -> int:
    """Write every logged forecast with its actual value (NULL while unknown) to ``path`` as JSON,
    atomically; returns the rows written.

    The file holds ``created_utc``, ``columns`` (:data:`PREDICTION_COLUMNS`), ``rows`` (lists,
    by target_date then issued_at) and ``folded``: the log files whose rows it includes, which a
    reader then no longer reads (they are deleted right after).
    """
    import pandas as pd

    from helpers.core.files import write_atomic
    from helpers.data.series import daily_total_scale

    frame = warehouse.query("select_predictions")
    # The forecasts are daily totals; the warehouse keeps each day's mean.
    scales = {series: daily_total_scale(warehouse, series) for series in frame["series_id"].unique()}
    frame["actual"] = frame["actual_mean"].astype(float) * frame["series_id"].map(scales).astype(float)
    out = frame[list(PREDICTION_COLUMNS)].astype(object)
    out["issued_at"] = frame["issued_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for column in ("fitted_until", "target_date"):
        out[column] = frame[column].dt.strftime("%Y-%m-%d")
    out["horizon_step"] = frame["horizon_step"].astype(int)
    out = out.astype(object).where(frame[list(PREDICTION_COLUMNS)].notna(), None)
    payload = {"created_utc": pd.Timestamp.now("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
               "columns": list(PREDICTION_COLUMNS), "folded": sorted(folded), "rows": out.values.tolist()}
    write_atomic(path, orjson.dumps(payload))
    return len(out)


# -- GET /predictions (the service) ---------------------------------------------------------
@dataclass(frozen=True)
class _Snapshot:
    created_utc: str | None
    rows: list[list[Any]]
    target_dates: list[str]
    folded: frozenset[str]


_NO_SNAPSHOT = _Snapshot(None, [], [], frozenset())
_TARGET = PREDICTION_COLUMNS.index("target_date")
_SOURCE = PREDICTION_COLUMNS.index("source")
_ISSUED = PREDICTION_COLUMNS.index("issued_at")


class PredictionReader:
    """Past predictions for ``GET /predictions``, without the warehouse.

    Reads the snapshot the last fold wrote (again only when the file changed) and the lines of
    the log files not folded yet (only what was appended since the last call; their actual
    value is unknown). Files are read before the snapshot: a file the fold deleted meanwhile
    is then in the snapshot it wrote before deleting.
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.log_dir = Path(log_dir)
        self._snapshot = _NO_SNAPSHOT
        self._snapshot_key: tuple[int, int, int] | None = None
        self._tails: dict[str, tuple[int, list[tuple[Any, ...]]]] = {}  # file stem: bytes read, rows
        self._lock = threading.Lock()

    def select(self, start: date | None = None, end: date | None = None, source: str = "all") -> dict[str, Any]:
        """Predictions whose target_date is in ``[start, end]`` (either open) from ``source``
        (api, scheduled, webapp or all), by target_date then issued_at, with the snapshot's time."""
        if source not in (*SOURCES, "all"):
            raise ValueError(f"source must be one of {', '.join(SOURCES)} or all, got {source!r}")
        with self._lock:
            unfolded = self._read_tails()
            snapshot = self._read_snapshot()
        low = start.isoformat() if start else ""
        high = end.isoformat() if end else "\uffff"
        rows = snapshot.rows[bisect_left(snapshot.target_dates, low):bisect_right(snapshot.target_dates, high)]
        seen: set[str] = set()
        for stem, file_rows in unfolded.items():
            if stem in snapshot.folded:
                continue
            for row in file_rows:
                if low <= row[_TARGET] <= high and row[0] not in seen:
                    seen.add(row[0])
                    rows.append([*row, None])
        if source != "all":
            rows = [row for row in rows if row[_SOURCE] == source]
        if seen:
            rows.sort(key=lambda row: (row[_TARGET], row[_ISSUED]))
        return {"snapshot_utc": snapshot.created_utc, "count": len(rows),
                "predictions": [dict(zip(PREDICTION_COLUMNS, row)) for row in rows]}

    def _read_tails(self) -> dict[str, list[tuple[Any, ...]]]:
        try:
            names = [p.name for p in self.log_dir.iterdir() if p.suffix in (".open", ".jsonl")]
        except (FileNotFoundError, NotADirectoryError):
            names = []
        stems = {name.rsplit(".", 1)[0] for name in names}
        self._tails = {stem: tail for stem, tail in self._tails.items() if stem in stems}
        for stem in sorted(stems):
            offset, rows = self._tails.get(stem, (0, []))
            data = None
            for suffix in (".open", ".jsonl"):  # renamed in between: the same file under its new name
                try:
                    with open(self.log_dir / f"{stem}{suffix}", "rb") as handle:
                        if os.fstat(handle.fileno()).st_size < offset:  # cut back after a failed write
                            offset, rows = 0, []
                        handle.seek(offset)
                        data = handle.read()
                    break
                except FileNotFoundError:
                    continue
            if data is None:  # folded and deleted meanwhile: the snapshot has it
                continue
            whole = data.rfind(b"\n") + 1  # a line another process is still writing waits for the next call
            if whole:
                rows = rows + read_rows(data[:whole], stem)
            self._tails[stem] = (offset + whole, rows)
        return {stem: rows for stem, (_, rows) in self._tails.items()}

    def _read_snapshot(self) -> _Snapshot:
        path = self.log_dir / SNAPSHOT_NAME
        try:
            info = path.stat()
        except OSError:
            self._snapshot, self._snapshot_key = _NO_SNAPSHOT, None
            return self._snapshot
        key = (info.st_ino, info.st_mtime_ns, info.st_size)
        if key != self._snapshot_key:
            try:
                payload = orjson.loads(path.read_bytes())
                if payload["columns"] != list(PREDICTION_COLUMNS):
                    raise ValueError(f"columns {payload['columns']}, expected {list(PREDICTION_COLUMNS)}")
                rows = payload["rows"]
                self._snapshot = _Snapshot(payload["created_utc"], rows, [row[_TARGET] for row in rows],
                                           frozenset(payload["folded"]))
            except (OSError, ValueError, KeyError, TypeError) as exc:  # orjson's decode error is a ValueError
                _say(f"forecast log: cannot read the predictions snapshot {path} ({exc}); the next fold rewrites it")
                self._snapshot = _NO_SNAPSHOT
            self._snapshot_key = key
        return self._snapshot

