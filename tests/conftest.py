from __future__ import annotations

import os
import pytest

from helpers.data.quality import SeriesSpec
from helpers.warehouse import Warehouse

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
