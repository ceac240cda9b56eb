"""The forecast log: the service's writer, the cycle's fold and scheduled log, the snapshot and its reader."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import orjson
import pandas as pd
import pytest

from helpers.operate.forecast_log import (
    LOG_COLUMNS, SNAPSHOT_NAME, ForecastLogWriter, ForecastPath, PredictionReader, artifact_forecasts, fold_logs,
    log_scheduled, write_predictions_snapshot,
)
from helpers.warehouse import TABLE_COLUMNS
from tests.support import add_actuals, artifact_payload, run_as_nobody, run_forked

DAYS = [f"2015-01-{d:02d}" for d in range(1, 8)]
PATH = ForecastPath(series_id="s", model="ets", model_version="2026-01-01T00:00:00", fitted_until="2014-12-31",
                    target_date=DAYS, horizon_step=list(range(1, 8)), forecast=[100.0 + i for i in range(7)],
                    lower_80=[95.0 + i for i in range(7)], upper_80=[105.0 + i for i in range(7)],
                    lower_95=[91.0 + i for i in range(7)], upper_95=[109.0 + i for i in range(7)])


#: For tests of the files' life rather than of the SQL, which the others run on both backends.
ONE_BACKEND = pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)


def files(folder: Path) -> list[str]:
    return sorted(p.suffix for p in folder.iterdir() if p.name != SNAPSHOT_NAME)


def lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def logged(warehouse) -> pd.DataFrame:
    return warehouse.query("select_predictions")


@pytest.fixture
def log_dir(tmp_path) -> Path:
    """A log folder beside the warehouse fixture's file."""
    path = tmp_path / "log"
    path.mkdir()
    return path


def test_the_log_columns_are_the_warehouse_tables():
    assert LOG_COLUMNS == TABLE_COLUMNS["forecast_log"]


def test_record_only_queues_and_flush_writes_one_line_per_issued_forecast(tmp_path):
    writer = ForecastLogWriter(tmp_path / "log")
    writer.record(PATH, 0, 3, issued_at=0.25)
    writer.record(PATH, 5, 7)
    assert writer.pending == 2 and not (tmp_path / "log").exists()  # no I/O on the request path
    assert writer.flush() == 5
    (written,) = (tmp_path / "log").glob("*.open")
    first, second = lines(written)
    assert first["issued_at"] == "1970-01-01T00:00:00.250000Z" and first["fitted_until"] == "2014-12-31"
    assert (first["target_date"], first["horizon_step"]) == (DAYS[:3], [1, 2, 3])
    assert first["forecast"] == [100.0, 101.0, 102.0]
    assert (second["target_date"], second["lower_95"], second["upper_80"]) == (DAYS[5:], [96.0, 97.0], [110.0, 111.0])
    assert len({first["id"], second["id"]}) == 2 and len(first["id"]) == 32
    assert writer.stats() == {"dir": str(tmp_path / "log"), "written_rows": 5, "dropped_rows": 0,
                              "pending_forecasts": 0, "last_error": None}


def test_a_queued_record_holds_no_object_the_garbage_collector_follows(tmp_path, monkeypatch):
    import dataclasses
    import gc

    from helpers.operate import forecast_log

    writer = ForecastLogWriter(tmp_path)
    other = dataclasses.replace(PATH, model="holt_winters")
    for path in (PATH, other, PATH):
        writer.record(path, 0, 2, issued_at=1.0)
    gc.collect()
    assert not any(gc.is_tracked(record) for record in writer._pending)  # numbers only
    monkeypatch.setattr(forecast_log, "PATH_NUMBERS", 2)  # past the limit: the path itself, still logged right
    third = dataclasses.replace(PATH, model="ensemble")
    writer.record(third, 1, 3, issued_at=2.0)
    assert writer._pending[-1][1] is third and writer._paths == [PATH, other]
    assert writer.flush() == 8
    (written,) = tmp_path.glob("*.open")
    assert [(line["model"], line["target_date"]) for line in lines(written)] == [
        ("ets", DAYS[:2]), ("holt_winters", DAYS[:2]), ("ets", DAYS[:2]), ("ensemble", DAYS[1:3])]


def test_rotation_closes_the_file_for_the_fold_and_the_next_write_starts_another(tmp_path):
    writer = ForecastLogWriter(tmp_path, rotate_seconds=3600, rotate_bytes=1000)
    assert writer.rotate() is None and not writer.rotation_due()  # nothing written: no file
    writer.record(PATH, 0, 7)
    writer.flush()
    assert files(tmp_path) == [".open"] and not writer.rotation_due()
    writer.record(PATH, 0, 7)
    writer.flush()
    assert writer.rotation_due()  # past rotate_bytes
    closed = writer.rotate()
    assert closed.suffix == ".jsonl" and len(lines(closed)) == 2
    writer.record(PATH, 0, 1)
    writer.flush()
    assert files(tmp_path) == [".jsonl", ".open"]
    aged = ForecastLogWriter(tmp_path, rotate_seconds=0.01)
    aged.record(PATH, 0, 1)
    aged.flush()
    time.sleep(0.02)
    assert aged.rotation_due()


def test_the_flusher_writes_in_the_background_and_closes_its_file_when_stopped(tmp_path):
    writer = ForecastLogWriter(tmp_path, flush_seconds=0.01)

    async def serve():
        flusher = asyncio.create_task(writer.run())
        for _ in range(600):  # more than one chunk in one flush
            writer.record(PATH, 0, 2)
        await asyncio.sleep(0.1)
        assert writer.pending == 0 and writer.written_rows == 1200
        writer.record(PATH, 0, 1)
        flusher.cancel()  # the service's shutdown
        await asyncio.gather(flusher, return_exceptions=True)

    # A loop of its own, not asyncio.run: that would also unset the main thread's event loop, and a
    # loop a library made there earlier would be left unclosed for the garbage collector to report.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(serve())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    (closed,) = tmp_path.glob("*.jsonl")
    assert len(lines(closed)) == 601 and files(tmp_path) == [".jsonl"]


def test_fold_adds_the_closed_files_once_writes_the_snapshot_and_deletes_them(warehouse, log_dir):
    writer = ForecastLogWriter(log_dir)
    writer.record(PATH, 0, 3)
    writer.flush()
    closed = writer.rotate()
    saved = closed.read_bytes()
    writer.record(PATH, 3, 4)
    writer.flush()  # still open: not folded
    assert fold_logs(warehouse, log_dir) == 3
    assert files(log_dir) == [".open"]
    table = logged(warehouse)
    assert table["target_date"].dt.strftime("%Y-%m-%d").tolist() == DAYS[:3]
    assert table["horizon_step"].tolist() == [1, 2, 3] and set(table["source"]) == {"api"}
    assert table["lower_80"].tolist() == [95.0, 96.0, 97.0] and table["actual_mean"].isna().all()
    snapshot = orjson.loads((log_dir / SNAPSHOT_NAME).read_bytes())
    assert len(snapshot["rows"]) == 3 and snapshot["folded"] == [closed.stem]

    # A fold that stopped between its insert and the delete: the same rows come again, twice.
    closed.write_bytes(saved)
    (log_dir / f"copy-{closed.name}").write_bytes(saved)
    assert fold_logs(warehouse, log_dir) == 0
    assert len(logged(warehouse)) == 3 and files(log_dir) == [".open"]
    assert fold_logs(warehouse, log_dir) == 0  # nothing closed: nothing to do


def test_the_dashboards_writer_logs_its_forecasts_as_webapp_beside_the_apis(warehouse, log_dir):
    """The service keeps a writer per request source (``X-Request-Source``); the fold keeps each row's source."""
    for source, (start, stop) in {"api": (0, 2), "webapp": (2, 5)}.items():
        writer = ForecastLogWriter(log_dir, source=source)
        writer.record(PATH, start, stop)
        writer.close()
    assert sorted(p.name.split("-")[0] for p in log_dir.glob("*.jsonl")) == ["api", "webapp"]
    assert fold_logs(warehouse, log_dir) == 5
    table = logged(warehouse)
    assert table["source"].tolist() == ["api", "api", "webapp", "webapp", "webapp"]
    with pytest.raises(ValueError, match="source must be one of api, scheduled, webapp, got 'web'"):
        ForecastLogWriter(log_dir, source="web")


@ONE_BACKEND
def test_fold_takes_over_the_file_of_a_writer_that_died_and_skips_its_torn_line(warehouse, log_dir, capsys):
    writer = ForecastLogWriter(log_dir)
    writer.record(PATH, 0, 2)
    writer.flush()
    (live,) = log_dir.glob("*.open")
    orphan = log_dir / "api-1-20260101T000000-abcdef-00001.open"  # no process holds its lock
    orphan.write_bytes(live.read_bytes().replace(b'"id":"', b'"id":"f')
                       + b'{"id":"torn","sou')
    assert fold_logs(warehouse, log_dir) == 2
    assert files(log_dir) == [".open"] and live.exists()  # the live writer's file is left alone
    assert "skipped 1 unreadable line(s) in " + str(orphan.with_suffix(".jsonl")) in capsys.readouterr().err


@ONE_BACKEND
def test_fold_while_a_writer_appends_takes_every_row_exactly_once(warehouse, log_dir):
    writer = ForecastLogWriter(log_dir, flush_seconds=0.002, rotate_seconds=0.01)
    flusher = threading.Thread(target=asyncio.run, args=(writer.run(),))
    issued = []

    def serve():
        for k in range(300):
            writer.record(PATH, k % 5, k % 5 + 2)
            issued.append(2)
            time.sleep(0.001)

    server = threading.Thread(target=serve)
    flusher.start()
    server.start()
    folded, folds = 0, 0
    while server.is_alive() or folds < 2:
        folded += fold_logs(warehouse, log_dir)
        folds += 1
    server.join()
    writer.stop()
    flusher.join(10)
    folded += fold_logs(warehouse, log_dir)
    table = logged(warehouse)
    assert folded == sum(issued) == len(table) == table["prediction_id"].nunique() == 600
    assert files(log_dir) == []


def test_scheduled_forecasts_are_logged_once_and_the_snapshot_joins_the_actual_values(warehouse, log_dir):
    payload = artifact_payload(n=3, models=("ets", "holt"))
    frame = artifact_forecasts(payload, issued_at="2026-01-02T06:00:00Z")
    assert log_scheduled(warehouse, frame) == 6
    assert log_scheduled(warehouse, frame) == 0  # the same cycle logged again
    add_actuals(warehouse, "s", {"2015-01-01": 111.0, "2015-01-02": 90.5})
    add_actuals(warehouse, "other", {"2015-01-03": 1.0})  # another series' day is not an actual
    assert write_predictions_snapshot(warehouse, log_dir / SNAPSHOT_NAME) == 6
    reader = PredictionReader(log_dir)
    selected = reader.select()
    rows = selected["predictions"]
    assert selected["count"] == 6 and selected["snapshot_utc"]
    assert sorted((r["target_date"], r["model"], r["horizon_step"], r["actual"]) for r in rows) == [
        ("2015-01-01", "ets", 1, 111.0), ("2015-01-01", "holt", 1, 111.0), ("2015-01-02", "ets", 2, 90.5),
        ("2015-01-02", "holt", 2, 90.5), ("2015-01-03", "ets", 3, None), ("2015-01-03", "holt", 3, None)]
    assert next(r for r in rows if r["model"] == "ets") | {"prediction_id": "x"} == {
        "prediction_id": "x", "source": "scheduled", "series_id": "s", "issued_at": "2026-01-02T06:00:00.000000Z",
        "model": "ets", "model_version": "2026-01-01T00:00:00", "fitted_until": "2014-12-31",
        "target_date": "2015-01-01", "horizon_step": 1, "forecast": 100.0, "lower_80": 95.0, "upper_80": 105.0,
        "lower_95": 91.0, "upper_95": 109.0, "actual": 111.0}
    assert reader.select(source="api")["count"] == 0
    # a half-hourly series: the forecasts are daily totals, 48 times the day's mean the warehouse keeps
    warehouse._run("INSERT INTO series_catalog VALUES ('s', '30min', 'f.csv', 'y', NULL, NULL, '2026-01-01')", ())
    write_predictions_snapshot(warehouse, log_dir / SNAPSHOT_NAME)
    assert {r["target_date"]: r["actual"] for r in PredictionReader(log_dir).select()["predictions"]} == {
        "2015-01-01": 111.0 * 48, "2015-01-02": 90.5 * 48, "2015-01-03": None}
    with pytest.raises(ValueError, match="missing \\['model_version'\\]"):
        log_scheduled(warehouse, frame.drop(columns="model_version"))


@ONE_BACKEND
def test_the_reader_merges_the_snapshot_with_the_rows_not_folded_yet(warehouse, tmp_path):
    reader = PredictionReader(tmp_path / "log")
    assert reader.select() == {"snapshot_utc": None, "count": 0, "predictions": []}  # no folder yet
    writer = ForecastLogWriter(tmp_path / "log")
    writer.record(PATH, 0, 2, issued_at=10.0)
    writer.flush()
    writer.rotate()
    assert fold_logs(warehouse, tmp_path / "log") == 2
    log_scheduled(warehouse, artifact_forecasts(artifact_payload(n=3), issued_at="2026-01-02"))
    write_predictions_snapshot(warehouse, tmp_path / "log" / SNAPSHOT_NAME)
    writer.record(PATH, 1, 4, issued_at=20.0)  # not folded yet: read from the service's file
    writer.flush()
    everything = reader.select()["predictions"]
    assert [(r["target_date"], r["source"], r["issued_at"][:19]) for r in everything] == [
        ("2015-01-01", "api", "1970-01-01T00:00:10"), ("2015-01-01", "scheduled", "2026-01-02T00:00:00"),
        ("2015-01-02", "api", "1970-01-01T00:00:10"), ("2015-01-02", "api", "1970-01-01T00:00:20"),
        ("2015-01-02", "scheduled", "2026-01-02T00:00:00"), ("2015-01-03", "api", "1970-01-01T00:00:20"),
        ("2015-01-03", "scheduled", "2026-01-02T00:00:00"), ("2015-01-04", "api", "1970-01-01T00:00:20")]
    window = reader.select(date(2015, 1, 2), date(2015, 1, 3), "api")["predictions"]
    assert [(r["target_date"], r["horizon_step"]) for r in window] == [("2015-01-02", 2), ("2015-01-02", 2),
                                                                       ("2015-01-03", 3)]
    writer.record(PATH, 6, 7)  # appended after the last read: only the new line is read
    writer.flush()
    assert reader.select(date(2015, 1, 7))["count"] == 1
    writer.rotate()
    assert fold_logs(warehouse, tmp_path / "log") == 4  # once folded, the same rows come from the snapshot
    assert [r["prediction_id"] for r in reader.select()["predictions"]] == [
        r["prediction_id"] for r in everything + reader.select(date(2015, 1, 7))["predictions"]]


def test_a_folder_the_service_may_not_write_drops_rows_counted_not_raised():
    folder = Path(tempfile.mkdtemp(prefix="helpers-log-"))
    folder.chmod(0o755 if os.geteuid() == 0 else 0o555)  # root writes anywhere: it runs as nobody below

    def serve() -> int:
        writer = ForecastLogWriter(folder / "log")
        writer.record(PATH, 0, 3)
        writer.record(PATH, 0, 4)
        assert writer.flush() == 0 and writer.flush() == 0
        writer.record(PATH, 0, 1)
        writer.flush()
        stats = writer.stats()
        assert stats["dropped_rows"] == 8 and stats["last_error"].startswith("PermissionError"), stats
        return 3

    try:
        code, err = run_as_nobody(serve) if os.geteuid() == 0 else (serve(), "")
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)
    assert code == 3, err
    if err:
        assert err == (f"forecast log: cannot write to {folder / 'log'} (Permission denied); dropping the forecasts "
                       "it cannot write, requests are still served (GET /health counts the dropped rows)\n")


def test_a_full_disk_drops_the_batch_and_leaves_only_whole_lines(tmp_path):
    """A file-size limit stands in for a full disk: the write that crosses it is cut short, the
    next fails with EFBIG; the writer cuts the file back to its last whole line."""
    import resource
    import signal

    def serve() -> int:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        writer = ForecastLogWriter(tmp_path)
        for _ in range(5):
            writer.record(PATH, 0, 7)  # about 600 bytes a line
        assert writer.flush() == 35
        for _ in range(3):
            writer.record(PATH, 0, 7)
        assert writer.flush() == 0
        assert writer.stats()["dropped_rows"] == 21 and "File too large" in writer.stats()["last_error"]
        (path,) = tmp_path.glob("*.open")
        assert len(lines(path)) == 5
        writer.record(PATH, 0, 1)  # small enough to fit: the writer goes on
        assert writer.flush() == 1
        return 4

    code, err = run_forked(serve)
    assert code == 4, err
    assert err.splitlines() == [
        f"forecast log: cannot write to {tmp_path} (File too large); dropping the forecasts it cannot write, "
        "requests are still served (GET /health counts the dropped rows)",
        f"forecast log: writing to {tmp_path} again (21 rows dropped so far)"]
