"""Concurrent access to the DuckDB warehouse: writers wait for each other, boundedly, and say so.

DuckDB lets one process write a file or many read it. These tests hold the file from this
process and run the real ingest command in another, as two people (or a build and a person)
would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers.warehouse import Warehouse, WarehouseBusy, WarehouseError
from helpers.warehouse.client import lock_holder
from tests.support import DQ, half_hourly

TIMEOUT = 60  # seconds any one subprocess may take


def _ingest(warehouse: Path, source: Path, series_id: str, wait: float) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPERS_")}
    env.update(HELPERS_WAREHOUSE_WAIT_SECONDS=str(wait), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "helpers.data.ingest", "--file", str(source), "--series-id",
                             series_id, "--warehouse", str(warehouse)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)



def _first_stderr_line(process: subprocess.Popen, timeout: float) -> str:
    """The first line the process writes to stderr, read in a thread so the wait is bounded."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stderr.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines, f"no line on stderr within {timeout} s"
    return lines[0]


@contextmanager
def _hold(path: Path, seconds: float):
    """Another process with a write connection on ``path`` for ``seconds`` (killed on exit)."""
    code = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(float(sys.argv[2]))"
    with subprocess.Popen([sys.executable, "-c", code, str(path), str(seconds)], stdout=subprocess.PIPE,
                          text=True) as holder:
        try:
            assert holder.stdout.readline().strip() == "held"
            yield holder
        finally:
            holder.kill()
            holder.wait(timeout=TIMEOUT)


def test_a_writer_waits_for_the_holder_says_for_whom_then_loads(tmp_path):
    path = tmp_path / "wh.duckdb"
    holder = Warehouse.open("duckdb", path)  # this process holds the file, as a build or an ingest would
    process = _ingest(path, DQ / "clean.csv", "second", wait=TIMEOUT)
    try:
        line = _first_stderr_line(process, TIMEOUT)
        assert line.startswith("waiting up to 60 s for the warehouse") and f"PID {os.getpid()}" in line
        assert process.poll() is None  # still waiting, not failed
    finally:
        holder.close()
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err
    assert "rows read 8" in out
    with Warehouse.open("duckdb", path, read_only=True) as wh:
        assert len(wh.read_series("raw_series", "second")) == 8


def test_the_wait_is_bounded_and_the_refusal_names_the_holder_and_the_setting(tmp_path):
    path = tmp_path / "wh.duckdb"
    with Warehouse.open("duckdb", path):
        started = time.monotonic()
        process = _ingest(path, DQ / "clean.csv", "second", wait=1)
        out, err = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 3
        assert time.monotonic() - started < TIMEOUT
        assert f"in use by PID {os.getpid()}" in err and "nothing was done" in err
        assert "HELPERS_WAREHOUSE_WAIT_SECONDS" in err and "rolled back" not in err
    with Warehouse.open("duckdb", path, read_only=True) as wh:  # nothing was loaded
        assert wh.read_series("raw_series", "second").empty


def test_two_ingests_started_together_both_load(tmp_path):
    path = tmp_path / "wh.duckdb"
    sources = []
    for k in range(2):
        sources.append(tmp_path / f"site{k}.csv")
        half_hourly(20_000, seed=k).to_csv(sources[-1], index=False)
    processes = [_ingest(path, source, f"site{k}", wait=TIMEOUT) for k, source in enumerate(sources)]
    results = [p.communicate(timeout=2 * TIMEOUT) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err for _, err in results]
    with Warehouse.open("duckdb", path, read_only=True) as wh:
        assert [len(wh.read_series("raw_series", f"site{k}")) for k in range(2)] == [20_000, 20_000]


def test_a_reader_waits_for_a_writer_in_another_process(tmp_path):
    path = tmp_path / "wh.duckdb"
    Warehouse.open("duckdb", path).close()
    said: list[str] = []
    with _hold(path, seconds=1.5) as holder:
        started = time.monotonic()
        with Warehouse.open("duckdb", path, read_only=True, wait_seconds=TIMEOUT, say=said.append) as wh:
            waited = time.monotonic() - started
            assert wh.table_counts()["raw_series"] == 0
    assert len(said) == 1 and f"PID {holder.pid}" in said[0] and waited > 0.5


def test_refusal_without_waiting_and_other_errors_are_not_retried(tmp_path):
    path = tmp_path / "wh.duckdb"
    with _hold(path, seconds=20) as holder:
        with pytest.raises(WarehouseBusy, match=rf"in use by PID {holder.pid} \(.*python.*duckdb.*\)"):
            Warehouse.open("duckdb", path, wait_seconds=0, say=lambda line: None)
    not_a_db = tmp_path / "text.duckdb"
    not_a_db.write_text("not a database")
    started = time.monotonic()
    with pytest.raises(WarehouseError, match="cannot open DuckDB warehouse") as info:
        Warehouse.open("duckdb", not_a_db, wait_seconds=TIMEOUT)
    assert not isinstance(info.value, WarehouseBusy) and time.monotonic() - started < 5


def test_lock_holder_reads_duckdbs_message():
    message = ('IO Error: Could not set lock on file "/x.duckdb": Conflicting lock is held in /usr/bin/python3 '
               f"(PID {os.getpid()}). See also https://duckdb.org/docs/current/connect/concurrency")
    own = Path("/proc/self/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    assert lock_holder(message) == f"PID {os.getpid()} ({own})"
    gone = message.replace(f"PID {os.getpid()}", "PID 999999999")
    assert lock_holder(gone) == "PID 999999999 (/usr/bin/python3)"
    assert lock_holder("Catalog Error: table x does not exist") is None
