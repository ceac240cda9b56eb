"""The monitoring signals of the last cycle, as a small JSON file the forecast service reads.

Each cycle judges the forecast (:func:`helpers.operate.monitoring.current_state`) and writes
what it found to ``<forecast_log_dir>/signals.json`` (:func:`write_signal_snapshot`),
atomically, beside the forecast log's ``predictions.json``. The service never opens the
warehouse: its ``GET /metrics`` reads this file (:class:`SignalSnapshotReader`, again only
when it changed) and exposes the signals as Prometheus gauges (:mod:`helpers.app.metrics`)::

    {"format": 1, "created_utc": "2026-12-03T06:15:02Z", "as_of": "2026-12-03T06:15:00",
     "series_id": "elecdemand", "last_actual": "2026-12-02",
     "signals": [{"key": "accuracy:ets", "status": "green", "value": 1.08}, ...],
     "drift_ks_pvalues": {"y_mean": 0.41}}

``signals`` are the monitoring's own (key, status green/orange/red/grey, the value judged;
null when grey); ``last_actual`` is the last day with an actual value; ``drift_ks_pvalues``
the KS p-value of each variable whose drift was judged (drift is red only when it is small
too). ``created_utc`` is the wall-clock time of writing, ``as_of`` the cycle's own time (a
replay's is simulated).

This module imports neither pandas nor the warehouse: the service imports the reader.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from helpers.core.files import write_atomic

SIGNALS_NAME = "signals.json"
FORMAT = 1
STATUSES = ("green", "orange", "red", "grey")


@dataclass(frozen=True)
class SignalValue:
    """One signal as the cycle judged it: ``key`` (``coverage_95:ets``), ``status``, ``value`` (None when grey)."""

    key: str
    status: str
    value: float | None


@dataclass(frozen=True)
class SignalSnapshot:
    """What :func:`write_signal_snapshot` wrote; times as UTC seconds since the epoch."""

    created: float
    as_of: str
    series_id: str
    last_actual: float | None  # midnight UTC of the last day with an actual value
    signals: tuple[SignalValue, ...]
    drift_ks_pvalues: dict[str, float]


def write_signal_snapshot(path: str | os.PathLike[str], signals: Iterable[Any], *, series_id: str,
                          as_of: datetime, last_actual: date | datetime | None,
                          drift_ks_pvalues: Mapping[str, float]) -> Path:
    """Write the snapshot to ``path`` atomically; ``signals`` have ``key``, ``status`` and ``value``
    (:class:`helpers.operate.monitoring.Signal`). Returns the path."""
    records = []
    for s in signals:
        if s.status not in STATUSES:
            raise ValueError(f"signal {s.key!r} has status {s.status!r}; expected one of {', '.join(STATUSES)}")
        records.append({"key": s.key, "status": s.status, "value": None if s.value is None else float(s.value)})
    day = None if last_actual is None else (last_actual.date() if isinstance(last_actual, datetime) else last_actual)
    payload = {"format": FORMAT, "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "as_of": as_of.isoformat(), "series_id": series_id,
               "last_actual": None if day is None else day.isoformat(), "signals": records,
               "drift_ks_pvalues": {k: float(v) for k, v in drift_ks_pvalues.items()}}
    return write_atomic(path, orjson.dumps(payload))


def epoch_seconds(text: str) -> float:
    """An ISO 8601 time or day as UTC seconds since the epoch (a time without offset is UTC)."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def parse_signal_snapshot(data: bytes) -> SignalSnapshot:
    """The snapshot in ``data``; raises ``ValueError``, ``KeyError`` or ``TypeError`` when it is not one."""
    payload = orjson.loads(data)
    if payload["format"] != FORMAT:
        raise ValueError(f"format {payload['format']!r}, expected {FORMAT}")
    signals = []
    for record in payload["signals"]:
        value = record["value"]
        if record["status"] not in STATUSES or not (value is None or isinstance(value, (int, float))):
            raise ValueError(f"signal {record!r} is not a key, a status and a number or null")
        signals.append(SignalValue(str(record["key"]), record["status"], None if value is None else float(value)))
    last = payload["last_actual"]
    return SignalSnapshot(created=epoch_seconds(payload["created_utc"]), as_of=str(payload["as_of"]),
                          series_id=str(payload["series_id"]),
                          last_actual=None if last is None else epoch_seconds(last), signals=tuple(signals),
                          drift_ks_pvalues={str(k): float(v) for k, v in payload["drift_ks_pvalues"].items()})


class SignalSnapshotReader:
    """The snapshot at ``path``, parsed again only when the file changed (inode, mtime or size).

    No file gives ``None``; a file that cannot be read or parsed gives ``None`` too, and one
    line on stderr per version of the file, so a scrape never fails on it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._key: tuple[int, int, int] | None = None
        self._snapshot: SignalSnapshot | None = None

    def read(self) -> SignalSnapshot | None:
        try:
            info = self.path.stat()
        except OSError:
            self._key, self._snapshot = None, None
            return None
        key = (info.st_ino, info.st_mtime_ns, info.st_size)
        if key != self._key:
            try:
                self._snapshot = parse_signal_snapshot(self.path.read_bytes())
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # orjson's errors are ValueErrors
                print(f"metrics: cannot read the monitoring signals {self.path} ({type(exc).__name__}: {exc}); "
                      "their gauges are left out until the next cycle rewrites it", file=sys.stderr, flush=True)
                self._snapshot = None
            self._key = key
        return self._snapshot
