"""The warehouse interface on both backends (DuckDB, and Snowflake through fakesnow)."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.data.ingest import ingest_file
from helpers.warehouse import client as wh_module
from helpers.warehouse import TABLE_COLUMNS, Warehouse, WarehouseError, sql_statements
from tests.support import DQ


def test_schema_matches_the_allow_list(warehouse):
    for table, columns in TABLE_COLUMNS.items():
        assert tuple(warehouse.query("select_none", table=table).columns) == columns, table


EMPTY = {"raw_series": 0, "hourly_series": 0, "daily_series": 0, "quarantine": 0, "dq_runs": 0,
         "series_catalog": 0, "ab_users": 0, "ab_experiments": 0, "intake_files": 0, "forecast_log": 0,
         "alerts": 0, "cycles": 0, "model_decisions": 0}


def test_table_counts_count_the_rows_of_every_permanent_table(warehouse, spec):
    assert warehouse.table_counts() == EMPTY
    # eight half-hours from 00:00: two with an unknown work-day value are quarantined, the six
    # loaded fall in four hours of one day
    ingest_file(DQ / "unknown_category.csv", spec, warehouse)
    assert warehouse.table_counts() == {**EMPTY, "raw_series": 6, "hourly_series": 4, "daily_series": 1,
                                        "quarantine": 2, "dq_runs": 1, "series_catalog": 1}


def test_template_slots_only_take_allow_listed_names():
    with pytest.raises(ValueError, match="not allowed"):
        sql_statements("select_series", table="raw_series; DROP TABLE raw_series")
    with pytest.raises(ValueError, match="whole number"):
        sql_statements("window_features", table="daily_series", measure="y_mean", window_preceding="6", season=7)
    with pytest.raises(ValueError, match="whole number"):
        sql_statements("window_features", table="daily_series", measure="y_mean", window_preceding=6, season=0)
    with pytest.raises(ValueError, match="unknown template slot"):
        sql_statements("select_series", column="y")
    with pytest.raises(ValueError, match="no SQL file"):
        sql_statements("does_not_exist")


def test_snowflake_sql_is_transpiled_for_duckdb():
    (duck,) = sql_statements("select_series", "duckdb", table="raw_series")
    assert "?" in duck and "raw_series" in duck
    create = sql_statements("schema", "duckdb")[0]
    assert "TIMESTAMP_NTZ" not in create and "TIMESTAMP" in create
    # sqlglot writes Snowflake's synonym TIMESTAMPNTZ; the type stays time-zone free
    assert "TIMESTAMPNTZ" in sql_statements("schema", "snowflake")[0].replace("_", "")


def test_values_are_bound_not_formatted(warehouse):
    hostile = "x'; DROP TABLE raw_series; --"
    assert warehouse.read_series("raw_series", hostile).empty
    assert "raw_series" in warehouse.table_counts()


def test_load_frame_only_into_stages_with_exact_columns(warehouse):
    warehouse.execute("create_stages")
    frame = pd.DataFrame({"series_id": ["s"], "ts": [pd.Timestamp("2020-01-01")], "y": [1.0],
                          "temperature": [None], "workday": [None], "run_id": ["r"]})
    with pytest.raises(ValueError, match="staging table"):
        warehouse.load_frame("raw_series", frame)
    with pytest.raises(ValueError, match="expects columns"):
        warehouse.load_frame("stage_raw", frame[["ts", "series_id", "y", "temperature", "workday", "run_id"]])
    assert warehouse.load_frame("stage_raw", frame.iloc[:0]) == 0
    assert warehouse.load_frame("stage_raw", frame) == 1


def test_transaction_rolls_back_on_error(warehouse):
    warehouse.execute("create_stages")
    frame = pd.DataFrame({"series_id": ["s"], "ts": [pd.Timestamp("2020-01-01")], "y": [1.0],
                          "temperature": [20.0], "workday": [1], "run_id": ["r"]})
    warehouse.load_frame("stage_raw", frame)
    with pytest.raises(RuntimeError, match="boom"):
        with warehouse.transaction():
            warehouse.execute("upsert_raw")
            raise RuntimeError("boom")
    assert warehouse.table_counts()["raw_series"] == 0
    with warehouse.transaction():
        warehouse.execute("upsert_raw")
    assert warehouse.table_counts()["raw_series"] == 1


def test_transactions_do_not_nest(warehouse):
    with pytest.raises(WarehouseError, match="do not nest"):
        with warehouse.transaction(), warehouse.transaction():
            pass


def test_failed_statement_names_backend(warehouse):
    with pytest.raises(WarehouseError, match=warehouse.backend):
        warehouse.query("count_existing_keys")  # stage tables do not exist yet


def test_query_needs_exactly_one_statement(warehouse):
    with pytest.raises(ValueError, match="exactly one query"):
        warehouse.query("schema")


def test_duckdb_read_only_needs_an_existing_file(tmp_path):
    with pytest.raises(WarehouseError, match="run the ingest first"):
        Warehouse.open("duckdb", tmp_path / "absent.duckdb", read_only=True)


@pytest.mark.parametrize("backend, path, message", [
    ("duckdb", None, "needs a database file path"),
    ("postgres", None, "backend must be one of"),
])
def test_open_rejects_bad_configuration(backend, path, message):
    with pytest.raises(ValueError, match=message):
        Warehouse.open(backend, path)


def test_snowflake_credentials_come_only_from_the_environment():
    env = {"SNOWFLAKE_ACCOUNT": "acme-xy123", "SNOWFLAKE_USER": "analyst", "SNOWFLAKE_PASSWORD": "s3cret",
           "SNOWFLAKE_WAREHOUSE": "WH", "UNRELATED": "x"}
    kwargs = wh_module._snowflake_connect_kwargs(env)
    assert kwargs == {"paramstyle": "qmark", "account": "acme-xy123", "user": "analyst", "password": "s3cret",
                      "warehouse": "WH"}
    named = wh_module._snowflake_connect_kwargs({"SNOWFLAKE_CONNECTION_NAME": "prod"})
    assert named == {"paramstyle": "qmark", "connection_name": "prod"}


def test_snowflake_connection_failure_is_a_clear_error(monkeypatch):
    import snowflake.connector

    def refuse(**kwargs):
        raise snowflake.connector.errors.DatabaseError("250001: Could not connect")

    monkeypatch.setattr(snowflake.connector, "connect", refuse)
    with pytest.raises(WarehouseError, match="connections.toml"):
        Warehouse.open("snowflake")
