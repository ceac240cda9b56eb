"""Shared test data builders and paths."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).parent / "fixtures"
DQ = FIXTURES / "dq"
UNREADABLE_FILES = FIXTURES / "unreadable"
SHORT = FIXTURES / "short"


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "the condition",
               every: float = 0.01) -> object:
    """``condition()``'s first true result, asked every ``every`` s; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a server a test started: SIGTERM, then SIGKILL if it has not ended within ``timeout`` s."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def cycle_settings(tmp_path: Path):
    """The test profile for the series ``fixture``, with every folder an operating cycle writes
    (inbox, archive, forecast log, products, reports, warehouse, MLflow store) under ``tmp_path``."""
    from helpers.core.settings import load_settings

    return load_settings("test", series_id="fixture", inbox_dir=str(tmp_path / "inbox"),
                         archive_dir=str(tmp_path / "archive"), forecast_log_dir=str(tmp_path / "log"),
                         products=str(tmp_path / "products"), reports=str(tmp_path / "reports"),
                         warehouse_path=str(tmp_path / "wh.duckdb"), mlflow_dir=str(tmp_path / "mlflow"))


def half_hourly(n: int, start: str = "2014-01-01", seed: int = 0) -> pd.DataFrame:
    """A small synthetic file in the default column layout."""
    rng = pd.Series(range(n))
    return pd.DataFrame({
        "timestamp": pd.date_range(start, periods=n, freq="30min").strftime("%Y-%m-%d %H:%M:%S"),
        "demand": (4 + (rng % 48) / 48 + seed).round(4).astype(str),
        "temperature": (15 + (rng % 10)).astype(float).astype(str),
        "workday": ((rng // 48) % 7 < 5).astype(int).astype(str),
    })


def daily_series(n=140, trend=0.0, season=10.0, noise=1.0, seed=0) -> pd.DataFrame:
    """A daily series with a weekly sine, optional trend, a work-day flag and degree-days."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2020-01-01", periods=n, freq="1D")
    t = np.arange(n)
    y = 100 + trend * t + season * np.sin(2 * np.pi * t / 7) + rng.normal(0, noise, n)
    return pd.DataFrame({"unique_id": "s", "ds": ds, "y": y, "workday": (ds.dayofweek < 5).astype(float),
                         "degree_days": rng.uniform(0, 10, n)})


def artifact_payload(n: int = 3, models: tuple[str, ...] = ("a",), start: str = "2015-01-01") -> dict:
    """A valid forecast artifact with ``n`` daily steps per model (the first model is selected)."""
    from helpers.forecast.artifact import SCHEMA_VERSION

    ds = [d.isoformat() for d in pd.date_range(start, periods=n, freq="1D")]
    entries = {}
    for k, name in enumerate(models):
        mean = [100.0 + k + i for i in range(n)]
        entries[name] = {
            "members": list(models[:k]) if name == "ensemble" else None,
            "cv": {"rmse": 10.0 + k, "mae": 8.0 + k, "coverage_80": 0.78, "coverage_95": 0.94,
                   "calibrated_coverage_80": 0.7, "calibrated_coverage_95": 0.9,
                   "raw_coverage_80": 0.9, "raw_coverage_95": 0.99},
            "calibration": {lv: {"level": int(lv), "method": "scaled", "factor": factor, "n": 28,
                                 "rank": -(-29 * int(lv) // 100), "finite_sample": True}
                            for lv, factor in (("80", 0.7), ("95", 0.8))},
            "forecast": {"ds": ds, "mean": mean, "lo-80": [m - 5 for m in mean], "hi-80": [m + 5 for m in mean],
                         "lo-95": [m - 9 for m in mean], "hi-95": [m + 9 for m in mean]},
        }
    return {"schema_version": SCHEMA_VERSION, "created_utc": "2026-01-01T00:00:00", "series_id": "s",
            "frequency": "1D", "training_start": "2014-01-01", "training_end": "2014-12-31", "data_sha256": "x" * 64,
            "selected_model": models[0], "models": entries,
            "interval_calibration": {"method": "split conformal", "learnt_on": "selection folds"},
            "parameters": {}, "packages": {}, "git_commit": "abc"}


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(url: str, profile_dir: Path, *args: str, timeout: int = 120) -> str:
    """Run headless Chromium (Debian's package; `make tools` installs it) on ``url``; returns stdout.

    Skips the calling test when Chromium is not installed.
    """
    import shutil
    import subprocess

    import pytest

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed (make tools installs Debian's package)")
    done = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", *args, url],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


NOBODY = 65534


def run_as_nobody(fn) -> tuple[int, str]:
    """Call ``fn()`` in a forked child that runs as the user ``nobody``; its exit code (``fn``'s
    return value, 99 for an exception) and what it wrote to stderr (the traceback, if any).

    The test process must run as root (only root can switch user); the modules already
    imported are shared, so the child needs to read nothing but the files under test.
    """
    import os

    def as_nobody():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        return fn()

    return run_forked(as_nobody)


def run_forked(fn) -> tuple[int, str]:
    """Call ``fn()`` in a forked child, for what must not touch the test process (a user switch,
    a resource limit); its exit code (``fn``'s return value, 99 for an exception) and stderr."""
    import os
    import sys
    import traceback

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 98
        try:
            os.close(read_end)
            sys.stderr = os.fdopen(write_end, "w")
            code = fn()
        except BaseException:
            traceback.print_exc()
            code = 99
        finally:
            sys.stderr.flush()
            os._exit(code if isinstance(code, int) else 0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        err = pipe.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err


def add_actuals(warehouse, series_id: str, days: dict[str, float]) -> None:
    """Daily actual values through raw_series, the way an ingest makes them."""
    from helpers.warehouse import TABLE_COLUMNS

    raw = pd.DataFrame({"series_id": series_id, "ts": pd.to_datetime(list(days)), "y": list(days.values()),
                        "temperature": None, "workday": None, "run_id": "r"}, columns=TABLE_COLUMNS["raw_series"])
    raw = raw.astype({"temperature": "float64", "workday": "float64"})
    warehouse.execute("create_stages")
    try:
        warehouse.load_frame("stage_raw", raw)
        with warehouse.transaction():
            warehouse.execute("upsert_raw")
            warehouse.execute("refresh_daily", [series_id])
    finally:
        warehouse.execute("drop_stages")
