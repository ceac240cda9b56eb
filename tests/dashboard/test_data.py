"""The dashboard's reads: the warehouse read-only (missing, held by a writer, of another layout,
empty, filled by the project's writers) and the registry."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import duckdb
import pytest

from helpers.core.settings import load_settings
from helpers.dashboard import data
from helpers.dashboard.data import RegistryUnavailable, WarehouseUnavailable
from helpers.warehouse import Warehouse
from tests.dashboard.builders import SERIES, make_history


def settings_for(tmp_path, **overrides):
    return load_settings("test", series_id=SERIES, warehouse_path=str(tmp_path / "warehouse.duckdb"),
                         products=str(tmp_path / "products"), mlflow_dir=str(tmp_path / "mlflow"), **overrides)


def test_a_missing_warehouse_says_how_to_build_one_and_which_setting_points_at_it(tmp_path, clean_env):
    with pytest.raises(WarehouseUnavailable, match=r"no warehouse at .*`make run`.*FROM=replay.*HELPERS_WAREHOUSE_PATH"):
        data.monitoring_view(settings_for(tmp_path))
    assert not (tmp_path / "warehouse.duckdb").exists()  # reading never makes one


def test_a_warehouse_held_by_a_writer_is_waited_for_then_a_sentence(tmp_path, clean_env):
    path = tmp_path / "warehouse.duckdb"
    Warehouse.open("duckdb", path).close()
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('holding', flush=True); time.sleep(60)", str(path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(WarehouseUnavailable, match=r"being written right now .*waited dashboard_timeout_seconds="
                                                       r"0.5 s. Reload the page"):
            data.data_quality_view(settings_for(tmp_path, dashboard_timeout_seconds=0.5))
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()


def test_a_warehouse_without_the_tables_is_a_sentence_naming_make_run(tmp_path, clean_env):
    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()
    with pytest.raises(WarehouseUnavailable, match=r"could not answer: duckdb statement failed.*`make run`"):
        data.retraining(settings_for(tmp_path))


def test_an_empty_warehouse_gives_empty_tables_and_grey_signals(tmp_path, clean_env):
    Warehouse.open("duckdb", tmp_path / "warehouse.duckdb").close()
    settings = settings_for(tmp_path)
    view = data.monitoring_view(settings)
    assert {s.status for s in view.signals} == {"grey"}
    assert view.alerts.empty and view.alerts_until is None and view.decisions.empty
    quality = data.data_quality_view(settings)
    assert quality.files.empty and quality.runs.empty and quality.quarantine.empty
    assert data.actuals(settings, date(2015, 1, 1), date(2015, 1, 31)).empty


def test_the_history_reads_as_the_monitoring_page_reads_it(tmp_path, clean_env):
    history = make_history(tmp_path)
    settings = settings_for(tmp_path)
    view = data.monitoring_view(settings)
    statuses = {s.key: s.status for s in view.signals}
    assert statuses["data_quality:invalid_share"] == "red" and statuses["drift:y_mean"] == "grey"
    assert view.alerts["alert_id"].tolist() == ["a1"] and str(view.alerts_until) == "2015-01-05 06:00:00"
    assert view.decisions["outcome"].tolist() == ["promoted"]
    actual = data.actuals(settings, date(2014, 12, 30), date(2015, 1, 2))
    # the daily totals of a half-hourly series: 48 times the day's mean, as the forecasts are
    assert actual["actual"].tolist() == pytest.approx([130.0, 131.0, 100.0, 101.0])
    assert [str(d.date()) for d in actual["ds"]] == ["2014-12-30", "2014-12-31", "2015-01-01", "2015-01-02"]
    assert history.warehouse.exists()


def test_an_unreadable_registry_is_a_sentence_naming_the_setting(tmp_path, clean_env):
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "mlflow" / "mlflow.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(RegistryUnavailable, match=r"cannot be read: .*HELPERS_MLFLOW_DIR"):
        data.registry_versions(settings_for(tmp_path))


def test_a_store_never_made_has_no_versions(tmp_path, clean_env):
    assert data.registry_versions(settings_for(tmp_path)) == []
