"""Fault tests: a small project to build, processes to kill, and a time limit on every test.

``project`` lays out a project root in a temporary folder (``HELPERS_ROOT``): the real
``env.yaml``, data file and problem statement, with the small pipeline of
``tests/reliability/project`` (the real ingest, one notebook, an artifact, the real reports
task). Its builds take seconds, so a test can build, break something and build again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
#: Seconds any one test here may take; a hung process fails its test instead of hanging the suite.
TIME_LIMIT = 180  # above the 2 x 60 s the concurrency tests allow their subprocesses

collect_ignore_glob = ["project/*"]  # the small project's notebook is built by the tests, not run by nbval


#: Seconds any one load command (ingest, A/B load) may take in these tests.
LOAD_TIMEOUT = 60


def load_env(warehouse: Path) -> dict[str, str]:
    """The environment of a load command writing to ``warehouse`` (``HELPERS_*`` of the session left out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPERS_")}
    env.update(HELPERS_WAREHOUSE_PATH=str(warehouse), HELPERS_WAREHOUSE_WAIT_SECONDS="5",
               PLOOMBER_STATS_ENABLED="false",
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]))
    return env


def ingest_command(source: Path, warehouse: Path, series_id: str = "site") -> list[str]:
    return [sys.executable, "-m", "helpers.data.ingest", "--file", str(source), "--series-id", series_id,
            "--warehouse", str(warehouse)]


def run_load(command: list[str], warehouse: Path) -> float:
    """Run a load ``command`` to the end, which must succeed; returns its wall time in seconds."""
    started = time.monotonic()
    done = subprocess.run(command, env=load_env(warehouse), capture_output=True, text=True, timeout=LOAD_TIMEOUT)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def sql_value(connection, query: str) -> tuple:
    return connection.execute(query).fetchone()


def series_state(path: Path, series_id: str = "site") -> dict:
    """Row counts of the tables an ingest writes and digests of their rows, read with SQL from the
    DuckDB file at ``path`` (opened for writing, as the next load would: DuckDB replays its log).

    Run ids are left out: two runs of the same load differ only in them.
    """
    import duckdb

    with duckdb.connect(str(path)) as connection:
        state = {table: sql_value(connection, f"SELECT count(*) FROM {table}")[0]
                 for table in ("raw_series", "hourly_series", "daily_series", "dq_runs", "series_catalog",
                               "quarantine")}
        state["raw_rows"] = sql_value(connection, "SELECT md5(string_agg(CAST(row(ts, y, temperature, workday) AS "
                                                  f"VARCHAR), ';' ORDER BY ts)) FROM raw_series WHERE series_id = "
                                                  f"'{series_id}'")
        for table in ("hourly_series", "daily_series"):
            state[f"{table}_rows"] = sql_value(connection, "SELECT md5(string_agg(CAST(t AS VARCHAR), ';' ORDER BY "
                                                           f"ts)) FROM {table} t")
        state["catalog_source"] = sql_value(connection, "SELECT list(source_file ORDER BY source_file) "
                                                        "FROM series_catalog")
    return state


@pytest.fixture(autouse=True)
def time_limit():
    def expire(signum, frame):
        raise TimeoutError(f"the test took longer than {TIME_LIMIT} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TIME_LIMIT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a zombie, dead but not yet reaped, is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_for(condition, timeout: float = 20.0, what: str = "the condition"):
    """Poll ``condition`` every 50 ms until it returns something true; fail after ``timeout`` s."""
    return wait_until(condition, timeout, what, every=0.05)


@pytest.fixture
def processes():
    """Started processes (``Popen``s or pids) to end when the test ends, whatever happened."""
    started: list = []
    yield started
    for item in started:
        pid = item if isinstance(item, int) else item.pid
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
        if not isinstance(item, int):
            item.wait(timeout=10)


@dataclass
class Project:
    root: Path
    env: dict[str, str]

    @property
    def products(self) -> Path:
        return self.root / "products"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def write_notebook(self, code: str) -> None:
        """Replace the analysis cell of the notebook (Ploomber sees a changed source)."""
        path = self.root / "notebooks" / "summary.ipynb"
        notebook = nbformat.read(path, as_version=4)
        notebook.cells[-1].source = code
        nbformat.write(notebook, path)

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        """``python -m <args>`` in the project, as cron or a shell would start it."""
        return subprocess.run([sys.executable, "-m", *args], cwd=self.root, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    root = tmp_path / "project"
    for name in ("env.yaml", "data/elecdemand.csv.gz", "docs/problem_statement.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    shutil.copy(HERE / "project" / "pipeline.yaml", root / "pipeline.yaml")
    shutil.copytree(HERE / "project" / "notebooks", root / "notebooks")
    for key in list(os.environ):  # the session's test settings (tests/conftest.py) are not this project's
        if key.startswith("HELPERS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HELPERS_ROOT", str(root))
    env = {key: value for key, value in os.environ.items() if not key.startswith("HELPERS_")}
    env.update(HELPERS_ROOT=str(root), PLOOMBER_STATS_ENABLED="false",
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")]))
    return Project(root, env)
