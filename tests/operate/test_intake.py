"""The inbox: each file taken in once by content, split into loaded and bad rows, archived; a
killed cycle loses nothing and loads nothing twice."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from helpers.core.settings import load_settings
from helpers.data.quality import read_source
from helpers.operate import intake
from helpers.warehouse import Warehouse
from tests.support import DQ, half_hourly

SHORT = DQ.parent / "short"
UNREADABLE = DQ.parent / "unreadable"


@pytest.fixture
def settings(tmp_path, clean_env):
    return load_settings("test", series_id="fixture", inbox_dir=str(tmp_path / "inbox"),
                         archive_dir=str(tmp_path / "archive"), warehouse_path=str(tmp_path / "wh.duckdb"))


def drop(settings, source: Path, name: str | None = None) -> Path:
    settings.inbox_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, settings.inbox_dir / (name or source.name)))


def run(settings, warehouse, cycle="c1"):
    return intake.process_inbox(settings, warehouse, cycle)


def test_a_good_file_is_loaded_archived_and_taken_in_once_even_renamed(settings, warehouse):
    settings = settings
    drop(settings, DQ / "clean.csv")
    (first,) = run(settings, warehouse).files
    assert (first.outcome, first.rows_read, first.rows_loaded, first.criticality) == ("good", 8, 8, "low")
    assert Path(first.archived_as).parent == settings.archive_dir / "good" and Path(first.archived_as).exists()
    assert not list(settings.inbox_dir.iterdir())
    page = Path(first.page).read_text()
    assert "Data quality: clean.csv" in page and "no bad rows" in page
    drop(settings, DQ / "clean.csv", "renamed.csv")
    drop(settings, DQ / "clean.csv")
    again = run(settings, warehouse, "c2").files
    assert [f.outcome for f in again] == ["duplicate", "duplicate"]
    assert len(warehouse.query("select_intake_files", ["fixture"])) == 1
    assert len(warehouse.read_series("raw_series", "fixture")) == 8
    assert len(list((settings.archive_dir / "duplicates").iterdir())) == 2 and not list(settings.inbox_dir.iterdir())


def test_a_mixed_file_loads_its_good_rows_and_keeps_its_bad_ones_with_reasons(settings, warehouse):
    drop(settings, DQ / "missing_value.csv")
    (outcome,) = run(settings, warehouse).files
    assert outcome.outcome == "mixed"
    assert outcome.rows_read == outcome.rows_loaded + outcome.rows_quarantined and outcome.rows_quarantined > 0
    assert len(warehouse.read_series("raw_series", "fixture")) == outcome.rows_loaded
    bad = pd.read_csv(outcome.bad_rows_file, dtype=str, keep_default_na=False)
    assert len(bad) == outcome.rows_quarantined
    assert bad["reasons"].str.contains("missing_value").all()
    source = read_source(DQ / "missing_value.csv")
    rows = bad["row_number"].astype(int) - 1
    assert (bad[list(source.columns)].to_numpy() == source.iloc[rows].fillna("").to_numpy()).all()
    assert Path(outcome.archived_as).parent == settings.archive_dir / "bad" and Path(outcome.archived_as).exists()
    (record,) = warehouse.query("select_intake_files", ["fixture"]).to_dict("records")
    assert json.loads(record["errors"]) == {"missing_value": outcome.rows_quarantined}
    assert record["invalid_share"] == pytest.approx(outcome.rows_quarantined / outcome.rows_read)
    assert record["first_ts"] == pd.Timestamp("2014-01-01 00:00") and record["run_id"]


@pytest.mark.parametrize("source", [SHORT / "same_timestamp.csv", UNREADABLE / "truncated.csv.gz",
                                    DQ / "missing_column.csv"])
def test_a_file_with_nothing_loadable_is_refused_recorded_and_archived_as_bad(settings, warehouse, source):
    drop(settings, source)
    (outcome,) = run(settings, warehouse).files
    assert (outcome.outcome, outcome.rows_loaded, outcome.criticality) == ("bad", 0, "high")
    assert outcome.reason and str(source.name) in outcome.reason
    assert Path(outcome.archived_as).parent == settings.archive_dir / "bad"
    assert warehouse.read_series("raw_series", "fixture").empty
    assert len(warehouse.query("select_intake_files", ["fixture"])) == 1
    assert "Data quality: " in Path(outcome.page).read_text()


def test_criticality_from_the_share_and_the_kinds_of_errors(settings):
    c = intake.criticality
    assert c(100, 100, {}, settings) == "low"
    assert c(1000, 999, {"missing_value": 1}, settings) == "low"  # 0.1% bad, below intake_medium_share (1%)
    assert c(100, 99, {"missing_value": 1}, settings) == "medium"  # 1%: medium from the threshold on
    assert c(1000, 999, {"unparseable": 1}, settings) == "medium"  # a serious kind, however few
    assert c(10, 9, {"missing_value": 1}, settings) == "high"  # 10%: intake_high_share
    assert c(5, 0, {"missing_value": 5}, settings) == "high"
    assert c(0, 0, {}, settings) == "high"


def test_a_half_done_cycle_is_finished_by_the_next(settings, warehouse, monkeypatch):
    """Stopped after the commit, before the archive: the next cycle archives it and loads nothing."""
    path = drop(settings, DQ / "missing_value.csv")
    monkeypatch.setattr(intake.shutil, "move", lambda *a: (_ for _ in ()).throw(OSError("stopped")))
    with pytest.raises(OSError):
        run(settings, warehouse)
    monkeypatch.undo()
    assert path.exists() and intake.new_files(warehouse, settings.inbox_dir) == []
    Path(warehouse.query("select_intake_files", ["fixture"])["bad_rows_file"].iloc[0]).unlink()
    (outcome,) = run(settings, warehouse, "c2").files
    assert outcome.outcome == "resumed" and Path(outcome.archived_as).exists() and Path(outcome.bad_rows_file).exists()
    assert len(warehouse.query("select_intake_files", ["fixture"])) == 1


def _state(path: Path) -> tuple:
    with duckdb.connect(str(path), read_only=True) as con:
        raw = con.execute("SELECT count(*), md5(string_agg(CAST(row(ts, y) AS VARCHAR), ';' ORDER BY ts)) "
                          "FROM raw_series").fetchone()
        files = con.execute("SELECT count(*), sum(rows_read), sum(rows_loaded), sum(rows_quarantined) "
                            "FROM intake_files").fetchone()
        quarantine = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    return raw, files, quarantine


@pytest.mark.slow
def test_a_cycle_killed_at_any_moment_loses_nothing_and_loads_nothing_twice(tmp_path, settings):
    """Four weekly files (one with bad rows) taken in by `python -m helpers.operate.intake run`,
    killed at moments spread over a clean run, then run again to the end: the warehouse and the
    archive equal the clean run's, every row accounted for."""
    frame = half_hourly(48 * 28, seed=3)
    frame.loc[[5, 700, 701], "demand"] = "n/a"
    source = tmp_path / "month.csv"
    frame.to_csv(source, index=False)
    env = {**os.environ, "HELPERS_PROFILE": "test", "HELPERS_SERIES_ID": "fixture",
           "PLOOMBER_STATS_ENABLED": "false"}
    command = [sys.executable, "-m", "helpers.operate.intake", "run"]

    def prepare(name: str) -> dict:
        root = tmp_path / name
        intake.split_file(source, root / "inbox", "timestamp", parts=4)
        return {**env, "HELPERS_INBOX_DIR": str(root / "inbox"), "HELPERS_ARCHIVE_DIR": str(root / "archive"),
                "HELPERS_WAREHOUSE_PATH": str(root / "wh.duckdb")}

    clean = prepare("clean")
    started = time.monotonic()
    subprocess.run(command, env=clean, check=True, capture_output=True, timeout=120)
    duration = time.monotonic() - started
    want = _state(Path(clean["HELPERS_WAREHOUSE_PATH"]))
    assert want[1] == (4, len(frame), len(frame) - 3, 3) and want[0][0] == len(frame) - 3
    rng = random.Random(11)
    killed_any = False
    for k in range(3):
        killed = prepare(f"killed{k}")
        process = subprocess.Popen(command, env=killed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(timeout=rng.uniform(k, k + 1) * duration / 3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=60)
            killed_any = True
        subprocess.run(command, env=killed, check=True, capture_output=True, timeout=120)
        assert _state(Path(killed["HELPERS_WAREHOUSE_PATH"])) == want, f"kill {k}"
        archive = Path(killed["HELPERS_ARCHIVE_DIR"])
        assert len(list((archive / "good").iterdir())) + len(list((archive / "bad").glob("*[0-9].csv"))) == 4
        assert not list(Path(killed["HELPERS_INBOX_DIR"]).iterdir())
    assert killed_any  # at least one run was cut short


def test_split_cuts_a_file_into_chronological_parts_that_add_up(tmp_path):
    frame = read_source(DQ / "unparseable.csv")
    parts = intake.split_file(DQ / "unparseable.csv", tmp_path / "p", "timestamp", parts=3)
    assert [p.name for p in parts] == ["unparseable-001.csv", "unparseable-002.csv", "unparseable-003.csv"]
    joined = pd.concat([read_source(p) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(joined, frame)
    weekly = intake.split_file(DQ / "clean.csv", tmp_path / "w", "timestamp", every="1h")
    assert [len(read_source(p)) for p in weekly] == [2, 2, 2, 2]
    after = intake.split_file(DQ / "clean.csv", tmp_path / "a", "timestamp", every="2h", after="2014-01-01 00:30")
    assert [len(read_source(p)) for p in after] == [3, 3]  # 01:00-02:00 and 02:30-03:30: periods from `after`
    with pytest.raises(ValueError, match="either parts"):
        intake.split_file(DQ / "clean.csv", tmp_path, "timestamp")
    with pytest.raises(ValueError, match="fixed pandas offset"):
        intake.split_file(DQ / "clean.csv", tmp_path, "timestamp", every="MS")
    with pytest.raises(Exception, match="no timestamp column 'time'"):
        intake.split_file(DQ / "clean.csv", tmp_path, "time", parts=2)


def test_the_command_line_splits_and_takes_in(tmp_path, settings, monkeypatch, capsys):
    for key, value in {"HELPERS_PROFILE": "test", "HELPERS_SERIES_ID": "fixture",
                       "HELPERS_INBOX_DIR": str(settings.inbox_dir), "HELPERS_ARCHIVE_DIR": str(settings.archive_dir),
                       "HELPERS_WAREHOUSE_PATH": str(settings.warehouse_path)}.items():
        monkeypatch.setenv(key, value)
    assert intake.main(["split", str(DQ / "clean.csv"), "--parts", "2"]) == 0
    assert "wrote 2 files" in capsys.readouterr().out
    assert intake.main(["run"]) == 0
    assert capsys.readouterr().out.count("loaded;") == 2
    assert intake.main(["split", str(DQ / "clean.csv"), "--parts", "0"]) == 2
    assert "parts must be at least 1" in capsys.readouterr().err
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        assert len(warehouse.read_series("raw_series", "fixture")) == 8


def test_a_file_still_being_written_is_left_for_the_next_cycle(settings, warehouse, monkeypatch):
    """A writer appends while the file is read: nothing of it is recorded or loaded; the next cycle takes it in."""
    path = drop(settings, DQ / "clean.csv")
    validate = intake.validate_file

    def validate_while_written(*args, **kwargs):
        check = validate(*args, **kwargs)
        with path.open("a") as more:  # the copy goes on
            more.write("2014-01-01 04:00:00,3.0,15.0,0\n")
        return check

    monkeypatch.setattr(intake, "validate_file", validate_while_written)
    result = run(settings, warehouse)
    assert result.files == [] and "changed while it was being taken in" in result.skipped[0]
    assert warehouse.query("select_intake_files", ["fixture"]).empty
    assert warehouse.read_series("raw_series", "fixture").empty and path.exists()
    monkeypatch.undo()
    (again,) = run(settings, warehouse, "c2").files
    assert (again.outcome, again.rows_loaded) == ("good", 9)


def test_a_file_changed_moments_ago_waits_for_the_settle_time(tmp_path, clean_env, warehouse):
    settings = load_settings("test", series_id="fixture", inbox_dir=str(tmp_path / "inbox"),
                             archive_dir=str(tmp_path / "archive"), intake_settle_seconds=60)
    path = drop(settings, DQ / "clean.csv")
    assert intake.process_inbox(settings, warehouse, "c1").files == []
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime - 120))
    (outcome,) = intake.process_inbox(settings, warehouse, "c2").files
    assert outcome.outcome == "good"
