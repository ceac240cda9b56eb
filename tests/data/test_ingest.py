"""Ingest end to end on both backends: accounting, idempotence, rejection, aggregates."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from helpers.core.settings import load_settings
from helpers.data.ingest import aggregate_grains, ingest_file, main
from helpers.data.quality import DataQualityError, SeriesSpec
from helpers.data.series import window_features
from helpers.warehouse import Warehouse
from tests.support import DQ, SHORT, UNREADABLE_FILES, half_hourly


def _snapshot(warehouse) -> dict[str, pd.DataFrame]:
    return {t: warehouse.read_series(t, "fixture") for t in ("raw_series", "hourly_series", "daily_series")}


def test_faulty_file_splits_into_loaded_and_quarantined(warehouse, spec):
    report = ingest_file(DQ / "duplicate_timestamp.csv", spec, warehouse)
    assert report.rows_read == report.rows_loaded + report.rows_quarantined == 10
    assert (report.rows_loaded, report.rows_quarantined) == (7, 3)
    quarantine = warehouse.query("select_quarantine", [report.run_id])
    assert list(quarantine["row_number"]) == [4, 6, 10]
    assert quarantine["reasons"].str.contains("duplicate_timestamp:timestamp").all()
    runs = warehouse.query("select_dq_runs", ["fixture"])
    assert runs.loc[0, ["rows_read", "rows_loaded", "rows_quarantined", "duplicate_timestamp",
                        "missing_timestamps", "gap_count"]].tolist() == [10, 7, 3, 3, 1, 1]


def test_reload_is_idempotent(warehouse, spec):
    first = ingest_file(DQ / "clean.csv", spec, warehouse)
    before = _snapshot(warehouse)
    second = ingest_file(DQ / "clean.csv", spec, warehouse)
    after = _snapshot(warehouse)
    assert (first.rows_inserted, first.rows_updated) == (8, 0)
    assert (second.rows_inserted, second.rows_updated) == (0, 8)
    for table in before:
        pd.testing.assert_frame_equal(before[table].drop(columns="run_id", errors="ignore"),
                                      after[table].drop(columns="run_id", errors="ignore"))
    assert warehouse.table_counts()["dq_runs"] == 2


def test_missing_column_leaves_the_warehouse_untouched(warehouse, spec):
    ingest_file(DQ / "clean.csv", spec, warehouse)
    counts, before = warehouse.table_counts(), _snapshot(warehouse)
    with pytest.raises(DataQualityError, match="missing required column 'demand'"):
        ingest_file(DQ / "missing_column.csv", spec, warehouse)
    assert warehouse.table_counts() == counts
    for table, frame in _snapshot(warehouse).items():
        pd.testing.assert_frame_equal(frame, before[table])


def test_later_file_replaces_overlapping_keys(warehouse, spec, tmp_path):
    ingest_file(DQ / "clean.csv", spec, warehouse)
    revised = half_hourly(4, seed=10)
    path = tmp_path / "revised.csv"
    revised.to_csv(path, index=False)
    report = ingest_file(path, spec, warehouse)
    assert (report.rows_inserted, report.rows_updated) == (0, 4)
    raw = warehouse.read_series("raw_series", "fixture")
    assert len(raw) == 8
    assert raw["y"].iloc[0] == pytest.approx(float(revised["demand"].iloc[0]))


def test_aggregates_match_pandas_resampling(warehouse, spec, tmp_path):
    data = half_hourly(48 * 3)
    path = tmp_path / "three_days.csv"
    data.to_csv(path, index=False)
    ingest_file(path, spec, warehouse)
    y = pd.Series(data["demand"].astype(float).to_numpy(), index=pd.to_datetime(data["timestamp"]))
    hourly = warehouse.read_series("hourly_series", "fixture")
    daily = warehouse.read_series("daily_series", "fixture")
    assert hourly["y_mean"].to_numpy() == pytest.approx(y.resample("1h").mean().to_numpy())
    assert daily["y_sum"].to_numpy() == pytest.approx(y.resample("1D").sum().to_numpy())
    assert daily["n_obs"].tolist() == [48, 48, 48]
    assert daily["workday"].tolist() == [1, 1, 1]


def test_window_features_match_pandas(warehouse, spec, tmp_path):
    data = half_hourly(48 * 20)
    path = tmp_path / "twenty_days.csv"
    data.to_csv(path, index=False)
    ingest_file(path, spec, warehouse)
    features = window_features(warehouse, "fixture", "daily", measure="y_sum")
    y = pd.Series(data["demand"].astype(float).to_numpy(), index=pd.to_datetime(data["timestamp"]))
    daily = y.resample("1D").sum()
    assert features["y_rolling_mean"].to_numpy() == pytest.approx(daily.rolling(7, min_periods=1).mean().to_numpy())
    assert features["y_lag_season"].iloc[7:].to_numpy() == pytest.approx(daily.shift(7).iloc[7:].to_numpy())
    expected_change = (daily / daily.shift(7) - 1).iloc[7:].to_numpy()
    assert features["y_change_vs_season"].iloc[7:].to_numpy() == pytest.approx(expected_change)
    assert features["y_lag_1"].isna().sum() == 1


@pytest.mark.parametrize("freq, grains", [
    ("30min", ["hourly", "daily"]), ("1h", ["hourly", "daily"]), ("1D", ["daily"]), ("7D", []), ("MS", []),
])
def test_aggregate_grains(freq, grains):
    assert aggregate_grains(freq) == grains


def test_hourly_series_gets_no_finer_aggregate(warehouse, tmp_path):
    frame = pd.DataFrame({"when": pd.date_range("2021-01-01", periods=48, freq="1h").astype(str),
                          "load": [str(float(i)) for i in range(48)]})
    path = tmp_path / "hourly.csv"
    frame.to_csv(path, index=False)
    spec = SeriesSpec("hourly", "when", "load", freq="1h")
    report = ingest_file(path, spec, warehouse)
    assert report.aggregates == ["hourly", "daily"] and report.rows_loaded == 48
    assert len(warehouse.read_series("daily_series", "hourly")) == 2


def test_cli_loads_and_writes_report(tmp_path, clean_env, capsys):
    out = tmp_path / "report.json"
    code = main(["--file", str(DQ / "out_of_range.csv"), "--series-id", "cli", "--warehouse",
                 str(tmp_path / "wh.duckdb"), "--report", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert (report["rows_loaded"], report["rows_quarantined"]) == (6, 2)
    assert "out_of_range" in capsys.readouterr().out


def test_cli_rejects_missing_column_with_exit_2(tmp_path, clean_env, capsys):
    code = main(["--file", str(DQ / "missing_column.csv"), "--warehouse", str(tmp_path / "wh.duckdb")])
    assert code == 2
    err = capsys.readouterr().err
    assert "missing required column 'demand'" in err and "unchanged" in err


def test_cli_rejects_bad_options_with_exit_2(tmp_path, clean_env, capsys):
    code = main(["--file", str(DQ / "clean.csv"), "--freq", "every so often", "--warehouse",
                 str(tmp_path / "wh.duckdb")])
    assert code == 2
    assert "offset alias" in capsys.readouterr().err


def test_cli_reports_warehouse_failure_with_exit_3(tmp_path, clean_env, capsys):
    not_a_db = tmp_path / "wh.duckdb"
    not_a_db.write_text("this is not a database")
    code = main(["--file", str(DQ / "clean.csv"), "--warehouse", str(not_a_db)])
    assert code == 3
    assert "warehouse error" in capsys.readouterr().err


def test_default_dataset_ingests_completely(tmp_path, clean_env):
    from helpers.data.ingest import ingest

    report = ingest(load_settings(warehouse_path=str(tmp_path / "wh.duckdb")))
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (17520, 17520, 0)
    assert report.counts["gap"] == 0


@pytest.mark.parametrize("name", ["truncated.csv.gz", "bit_flipped.csv.gz", "bad_checksum.csv.gz", "not_gzip.csv.gz",
                                  "empty.csv", "header_only.csv", "corrupt.parquet", "not_parquet.parquet",
                                  "latin1.csv", "latin1_bom.csv"])
def test_cli_refuses_every_unreadable_file_with_exit_2_naming_it_and_what_to_do(tmp_path, clean_env, capsys, name):
    """A truncated .csv.gz (EOFError) and a bit-flipped one (zlib.error) ended in a traceback, exit 1."""
    path = UNREADABLE_FILES / name
    warehouse = tmp_path / "wh.duckdb"
    code = main(["--file", str(path), "--warehouse", str(warehouse)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: {path}: ") and err.endswith("\nnothing was loaded; the warehouse is unchanged.\n")
    assert any(advice in err for advice in ("copy or download the file again", "load a file with a header line",
                                            "set encoding to the encoding the file is in")), err
    with Warehouse.open("duckdb", warehouse) as wh:
        assert set(wh.table_counts().values()) == {0}


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_latin1_file_loads_with_the_encoding_setting(tmp_path, clean_env, monkeypatch, capsys, how):
    args = ["--file", str(UNREADABLE_FILES / "latin1_bom.csv"), "--series-id", "latin",
            "--warehouse", str(tmp_path / "wh.duckdb")]
    if how == "option":
        args += ["--encoding", "latin-1"]
    else:
        monkeypatch.setenv("HELPERS_ENCODING", "latin-1")
    assert main(args) == 0, capsys.readouterr().err
    assert "rows read 8 = loaded 8 + quarantined 0" in capsys.readouterr().out


def test_cli_refuses_an_unknown_encoding_with_exit_2(tmp_path, clean_env, capsys):
    code = main(["--file", str(DQ / "clean.csv"), "--encoding", "klingon", "--warehouse", str(tmp_path / "wh.duckdb")])
    assert code == 2
    assert capsys.readouterr().err.startswith(
        "error: encoding must be a text encoding such as utf-8, latin-1 or cp1252 (set encoding in env.yaml or "
        "HELPERS_ENCODING), got 'klingon'\n")


def test_a_file_with_no_loadable_row_is_refused_and_creates_no_catalog_entry(warehouse, spec):
    """Eight rows at one timestamp with eight values: all quarantined, and a catalog entry for 0 rows
    made every analysis fail later with "no raw rows ... its frequency 30min may be coarser"."""
    path = SHORT / "same_timestamp.csv"
    with pytest.raises(DataQualityError) as info:
        ingest_file(path, spec, warehouse)
    assert str(info.value) == (
        f"{path}: none of its 8 rows can be loaded: 'timestamp' repeats: 0 exact copies (first row kept), 8 rows "
        "with conflicting values (all quarantined) (8 rows, e.g. row 1: '2014-01-01 00:00:00'); fix those rows and "
        "load the file again")
    assert set(warehouse.table_counts().values()) == {0}
    assert warehouse.query("select_catalog", ["fixture"]).empty


def test_identical_rows_at_one_timestamp_load_one_row(warehouse, spec):
    report = ingest_file(SHORT / "same_timestamp_copies.csv", spec, warehouse)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (8, 1, 7)


def _loaded(warehouse, report) -> tuple:
    runs = warehouse.query("select_dq_runs", ["fixture"]).drop(columns=["run_id", "started_at", "finished_at"])
    return (warehouse.read_series("raw_series", "fixture").drop(columns="run_id"),
            warehouse.query("select_quarantine", [report.run_id]).drop(columns=["run_id", "quarantined_at"]),
            runs, {k: v for k, v in json.loads(report.to_json()).items()
                   if k not in ("run_id", "started_at", "finished_at")})


@pytest.mark.parametrize("name", sorted(p.stem for p in DQ.glob("*.csv") if p.stem != "missing_column"))
def test_chunks_load_what_one_chunk_loads(tmp_path, spec, monkeypatch, name):
    """Known answer: the fixtures read 7 or 1 rows at a time give the one-chunk report,
    quarantine and rows; duplicates, disorder, gaps and the grid's phase span chunk boundaries."""
    from helpers.data import quality

    source = tmp_path / f"{name}.csv"  # two copies a year apart: more rows than any chunk
    frame = quality.read_source(DQ / f"{name}.csv")
    later = frame.assign(timestamp=frame["timestamp"].str.replace("2014-", "2015-", regex=False))
    pd.concat([frame, later]).to_csv(source, index=False)
    answers = []
    for chunk_rows in (10_000, 7, 1):
        monkeypatch.setattr(quality, "CHUNK_ROWS", chunk_rows)
        with Warehouse.open("duckdb", tmp_path / f"{chunk_rows}.duckdb") as wh:
            answers.append(_loaded(wh, ingest_file(source, spec, wh)))
    for answer in answers[1:]:
        for got, want in zip(answer, answers[0]):
            if isinstance(want, pd.DataFrame):
                pd.testing.assert_frame_equal(got, want)
            else:
                assert got == want
