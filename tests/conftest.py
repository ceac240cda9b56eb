from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest

from helpers.data.quality import SeriesSpec
from helpers.warehouse import Warehouse

# pytest-xdist runs a worker per core already: a test's backtests fit in its own process (the
# tests of the parallel backtest pass jobs= themselves). Notebooks and builds inherit this.
os.environ.setdefault("HELPERS_CV_JOBS", "1")

@pytest.fixture
def clean_env(monkeypatch):
    """No HELPERS_* variables: settings come from the files alone."""
    for key in list(os.environ):
        if key.startswith("HELPERS_") and key != "HELPERS_ROOT":
            monkeypatch.delenv(key)


@pytest.fixture
def spec() -> SeriesSpec:
    return SeriesSpec(series_id="fixture", timestamp_col="timestamp", target_col="demand",
                      temperature_col="temperature", workday_col="workday", freq="30min")


@pytest.fixture(params=["duckdb", "snowflake"])
def warehouse(request, tmp_path, monkeypatch):
    """An empty warehouse on each backend; Snowflake is emulated by fakesnow."""
    if request.param == "duckdb":
        with Warehouse.open("duckdb", tmp_path / "warehouse.duckdb") as wh:
            yield wh
        return
    import fakesnow

    for key in list(os.environ):
        if key.startswith("SNOWFLAKE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SNOWFLAKE_DATABASE", "TESTDB")
    monkeypatch.setenv("SNOWFLAKE_SCHEMA", "ANALYTICS")
    with fakesnow.patch(), Warehouse.open("snowflake") as wh:
        yield wh


@pytest.fixture(scope="session")
def mlflow_store_db(tmp_path_factory) -> Path:
    """An MLflow SQLite database with its tables made and nothing in it, to copy wherever a test
    needs a store. Making the tables costs ~4 s of migrations, so the xdist workers of a session
    share one, made by the first under a lock."""
    from helpers.lifecycle.tracking import DB_NAME, Store

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's folder, or this run's
    db = root / "mlflow-empty" / DB_NAME
    with open(root / "mlflow-empty.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not db.exists():
            making = root / "mlflow-empty.making"
            shutil.rmtree(making, ignore_errors=True)
            uri = f"sqlite:///{making / DB_NAME}"
            Store(uri, uri, "template").client().search_experiments()
            making.rename(db.parent)
    return db
