"""A small operating history for the dashboard's tests, made by the project's own writers: an
inbox file taken in (with quarantined rows), the actual values of some days, a cycle's
scheduled forecasts, a retraining decision and an alert; and the service that serves the artifact."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from helpers.core.settings import load_settings
from helpers.forecast.artifact import write_artifact
from helpers.lifecycle import decisions
from helpers.lifecycle.decisions import Decision, Score
from helpers.operate import intake
from helpers.operate.forecast_log import SNAPSHOT_NAME, artifact_forecasts, log_scheduled, write_predictions_snapshot
from helpers.warehouse import TABLE_COLUMNS, Warehouse
from tests.support import DQ, add_actuals, artifact_payload, stop_process

SERIES = "fixture"
MODELS = ("ets", "holt_winters")
#: The artifact's forecast: 30 days from 2015-01-01; trained up to 2014-12-31.
PAYLOAD = {**artifact_payload(n=30, models=MODELS), "series_id": SERIES}


@dataclass(frozen=True)
class History:
    folder: Path
    artifact: Path
    warehouse: Path
    environment: dict[str, str]  # the HELPERS_* variables that point the dashboard at it (service URL apart)


def make_history(folder: Path) -> History:
    """The history under ``folder``; ``environment`` names its settings for the dashboard."""
    environment = {"HELPERS_PROFILE": "test", "HELPERS_SERIES_ID": SERIES,
                   "HELPERS_WAREHOUSE_PATH": str(folder / "warehouse.duckdb"),
                   "HELPERS_PRODUCTS": str(folder / "products"), "HELPERS_MLFLOW_DIR": str(folder / "mlflow"),
                   "HELPERS_INBOX_DIR": str(folder / "inbox"), "HELPERS_ARCHIVE_DIR": str(folder / "archive"),
                   "HELPERS_FORECAST_LOG_DIR": str(folder / "log"), "HELPERS_DASHBOARD_CACHE_SECONDS": "0"}
    settings = load_settings("test", series_id=SERIES, warehouse_path=environment["HELPERS_WAREHOUSE_PATH"],
                             inbox_dir=environment["HELPERS_INBOX_DIR"], archive_dir=environment["HELPERS_ARCHIVE_DIR"],
                             products=environment["HELPERS_PRODUCTS"], intake_settle_seconds=0)
    artifact = write_artifact(folder / "products" / "model" / "forecast_artifact.json", PAYLOAD)
    settings.inbox_dir.mkdir(parents=True)
    shutil.copy(DQ / "missing_value.csv", settings.inbox_dir / "missing_value.csv")
    with Warehouse.from_settings(settings) as warehouse:
        intake.process_inbox(settings, warehouse, "c1", now=datetime(2015, 1, 5, 6))
        # daily means whose daily totals (48 half-hours) are near the artifact's forecasts
        add_actuals(warehouse, SERIES, {f"2014-12-{d:02d}": (100.0 + d) / 48 for d in range(1, 32)}
                    | {f"2015-01-{d:02d}": (99.0 + d) / 48 for d in range(1, 6)})
        log_scheduled(warehouse, artifact_forecasts(PAYLOAD, issued_at="2015-01-01 06:00"))
        write_predictions_snapshot(warehouse, folder / "log" / SNAPSHOT_NAME)  # as a cycle's fold does
        champion = Score(1, "ets", 12.1, 15.5, 0.75, 0.93, ())
        challenger = Score(2, "holt_winters", 11.0, 14.2, 0.80, 0.96, ())
        message = decisions.explain("promoted", champion, challenger, 0.02, 2, 1, "")
        decisions.record(warehouse, Decision("d1", SERIES, "demand-forecast", datetime(2015, 1, 5, 6), "schedule", (),
                                             "promoted", 1, 2, champion, challenger, 0.02, 14,
                                             ("2014-12-01T00:00:00", "2014-12-15T00:00:00"), message), [])
        alert = {"alert_id": "a1", "condition": "data_quality:invalid_share", "severity": "red",
                 "opened_at": datetime(2015, 1, 5, 6), "last_seen_at": datetime(2015, 1, 5, 6), "cleared_at": None,
                 "message": "The inbox files of the last 28 days had 25% invalid rows.", "delivered": "{}"}
        warehouse.execute("create_log_stages")
        try:
            warehouse.load_frame("stage_alerts", pd.DataFrame([alert], columns=TABLE_COLUMNS["alerts"]))
            warehouse.execute("insert_alerts")
        finally:
            warehouse.execute("drop_log_stages")
    return History(folder, artifact, settings.warehouse_path, environment)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running(command: list[str], url: str, environment: dict[str, str], timeout: float = 60.0) -> Iterator[str]:
    """``command`` started with ``environment``, once ``url`` answers (within ``timeout`` s); stopped after."""
    process = subprocess.Popen(command, env={**os.environ, **environment}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{command} did not answer at {url}: "
                                         f"{process.stderr.read().decode()[-2000:] if process.stderr else ''}") from None
                time.sleep(0.1)
        yield url
    finally:
        stop_process(process)
        if process.stderr:
            process.stderr.close()


@contextmanager
def service(history: History) -> Iterator[str]:
    """``python -m helpers.app.service`` serving the history's artifact on a free port; its URL."""
    port = free_port()
    command = [sys.executable, "-m", "helpers.app.service", "--artifact", str(history.artifact), "--port", str(port)]
    with running(command, f"http://127.0.0.1:{port}/health", history.environment):
        yield f"http://127.0.0.1:{port}"
