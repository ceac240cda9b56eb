"""One operating cycle: skipped when nothing is new, turned away while a scheduled run holds the lock."""

from __future__ import annotations

import pytest

from helpers.app import cycle
from helpers.app.scheduler import run_lock
from helpers.core.settings import load_settings
from helpers.warehouse import Warehouse


@pytest.fixture
def settings(tmp_path, clean_env):
    return load_settings("test", series_id="fixture", inbox_dir=str(tmp_path / "inbox"),
                         archive_dir=str(tmp_path / "archive"), forecast_log_dir=str(tmp_path / "log"),
                         products=str(tmp_path / "products"), reports=str(tmp_path / "reports"),
                         warehouse_path=str(tmp_path / "wh.duckdb"))


def test_a_cycle_with_nothing_new_is_recorded_as_skipped_and_exits_0(settings, tmp_path, capsys):
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / ".fetched-partial.csv").write_text("timestamp,demand\n")  # being written: not new
    assert cycle.operate(settings, tmp_path / "runs") == 0
    assert "skipped: no file in" in capsys.readouterr().out
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        (row,) = warehouse.query("select_cycles").to_dict("records")
    assert row["status"] == "skipped" and row["finished_at"] >= row["started_at"]
    assert not (tmp_path / "products").exists()  # nothing was built


def test_a_cycle_is_turned_away_while_the_lock_is_held(settings, tmp_path, capsys):
    with run_lock(tmp_path / "runs"):
        assert cycle.operate(settings, tmp_path / "runs") == cycle.EXIT_BUSY
    assert "another scheduled run holds" in capsys.readouterr().err


def test_a_bad_setting_exits_2(clean_env, monkeypatch, capsys):
    monkeypatch.setenv("HELPERS_MONITOR_PSI_RED", "-1")
    assert cycle.main([]) == cycle.EXIT_REFUSED
    assert "monitor_psi_red" in capsys.readouterr().err


def test_a_cycle_without_a_model_to_refit_refuses_and_leaves_the_inbox(settings, tmp_path, capsys):
    from tests.support import DQ

    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "new.csv").write_bytes((DQ / "clean.csv").read_bytes())
    assert cycle.operate(settings, tmp_path / "runs") == cycle.EXIT_REFUSED
    err = capsys.readouterr().err
    assert "there is none to refit" in err and "`make run`" in err
    assert (tmp_path / "inbox" / "new.csv").exists()


def test_a_cycle_after_a_failed_one_is_not_skipped(settings, tmp_path, capsys):
    import pandas as pd

    with Warehouse.from_settings(settings) as warehouse:
        warehouse.execute("insert_cycle", ["c0", pd.Timestamp("2026-01-01"), pd.Timestamp("2026-01-01"), "failed", 1,
                                           10, 0, "the refit failed"])
    # nothing in the inbox, but the failed cycle's work is owed: it is not skipped (and refuses: no model here)
    assert cycle.operate(settings, tmp_path / "runs") == cycle.EXIT_REFUSED
    assert "there is none to refit" in capsys.readouterr().err
