"""What the dashboard reads besides the service: the warehouse, read-only, and the model registry.

Every read opens the warehouse read-only (DuckDB ``read_only=True``: the operating cycle is its
only writer), reads what the page shows at once and closes it, so a cycle never waits for a page.
A warehouse that is missing, or held by a writer for longer than ``dashboard_timeout_seconds``,
is a :class:`WarehouseUnavailable` whose message says what to do. The monitoring view is
computed by the functions the monitoring page uses (:mod:`helpers.operate.monitoring`,
:mod:`helpers.lifecycle.decisions`), so the two always agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from helpers.core.settings import Settings, where
from helpers.dashboard.client import DashboardError
from helpers.data.series import daily_total_scale
from helpers.lifecycle import decisions
from helpers.lifecycle.registry import ModelVersion, Registry
from helpers.operate import monitoring
from helpers.warehouse import Warehouse, WarehouseBusy, WarehouseError

#: The alerts shown: those open at any time in this many days up to the latest alert activity.
ALERT_DAYS = 30


class WarehouseUnavailable(DashboardError):
    """The warehouse cannot be read now; the message says why and what to do."""


class RegistryUnavailable(DashboardError):
    """The model registry cannot be read; the message says why and what to do."""


@contextmanager
def read_warehouse(settings: Settings) -> Iterator[Warehouse]:
    """The warehouse of ``settings``, opened read-only for one block of reads.

    Raises :class:`WarehouseUnavailable` when there is no warehouse yet, or when a writer (a
    cycle, an ingest) holds it for longer than ``dashboard_timeout_seconds``.
    """
    path = Path(settings.warehouse_path)
    if settings.warehouse_backend == "duckdb" and not path.exists():
        raise WarehouseUnavailable(
            f"There is no warehouse at {path} yet. Build one with `make run` (or `make replay`, then start the "
            "dashboard with `make dashboard FROM=replay`), or point the dashboard at yours: "
            f"{where('warehouse_path')}.")
    try:
        warehouse = Warehouse.open(settings.warehouse_backend, path, read_only=True,
                                   wait_seconds=settings.dashboard_timeout_seconds, say=lambda line: None)
    except WarehouseBusy as exc:
        raise WarehouseUnavailable(
            f"The warehouse is being written right now ({exc}); the dashboard only reads it and waited "
            f"dashboard_timeout_seconds={settings.dashboard_timeout_seconds:g} s. Reload the page in a moment.") from None
    except WarehouseError as exc:
        raise WarehouseUnavailable(f"The warehouse at {path} cannot be read: {exc}") from None
    try:
        yield warehouse
    except WarehouseError as exc:  # a warehouse of an older layout, say: a table the query needs is missing
        raise WarehouseUnavailable(f"The warehouse at {path} could not answer: {str(exc).splitlines()[0]}. Rebuild "
                                   "it with `make run` if it was made by an older version.") from None
    finally:
        warehouse.close()


def actuals(settings: Settings, start: date | None = None, end: date | None = None) -> pd.DataFrame:
    """The daily actual values from ``start`` to ``end`` (either open): ``ds`` and ``actual``, on
    the forecasts' scale, the daily total (the day's mean times the steps in a day, 48 for
    half-hourly data), as :func:`helpers.operate.monitoring.forecasts_with_actuals` puts them."""
    with read_warehouse(settings) as warehouse:
        daily = warehouse.read_series("daily_series", settings.series_id)
        scale = daily_total_scale(warehouse, settings.series_id) if len(daily) else 1.0
    days = pd.to_datetime(daily["ts"])
    keep = (days >= pd.Timestamp(start or days.min())) & (days <= pd.Timestamp(end or days.max()))
    return pd.DataFrame({"ds": days[keep].to_numpy(),
                         "actual": (daily.loc[keep, "y_mean"].astype(float) * scale).to_numpy()})


@dataclass(frozen=True)
class MonitoringView:
    """Everything the monitoring page shows, read at once."""

    signals: list[monitoring.Signal]
    forecasts: pd.DataFrame
    files: pd.DataFrame
    quality: pd.DataFrame
    drift: monitoring.DriftResult
    thresholds: monitoring.Thresholds
    reference: monitoring.ModelReference
    decisions: pd.DataFrame
    alerts: pd.DataFrame
    alerts_until: pd.Timestamp | None  # the end of the alert window (the latest alert activity)


def alerts_window(warehouse: Warehouse, days: int = ALERT_DAYS) -> tuple[pd.DataFrame, pd.Timestamp | None]:
    """The alerts open at any time in the ``days`` up to the latest alert activity, newest first,
    and that latest moment (None without alerts). The window ends at the data's own time, so a
    replayed year shows its own last month."""
    latest = warehouse.query("alerts_latest")["latest"].iloc[0]
    if latest is None or pd.isna(latest):
        return pd.DataFrame(columns=["alert_id", "condition", "severity", "opened_at", "last_seen_at", "cleared_at",
                                     "message"]), None
    until = pd.Timestamp(latest)
    since = until - pd.Timedelta(days=days)
    return warehouse.query("alerts_since", [since, since, since]), until


def monitoring_view(settings: Settings, artifact: str | Path | None = None) -> MonitoringView:
    """The monitoring page's signals, tables and alerts, from the warehouse and the model's
    artifact (``artifact``, default ``<products>/model/forecast_artifact.json``)."""
    thresholds = monitoring.Thresholds.from_settings(settings)
    reference = monitoring.load_reference(artifact or monitoring.default_artifact(settings))
    with read_warehouse(settings) as warehouse:
        forecasts = monitoring.forecasts_with_actuals(warehouse, settings.series_id)
        daily = warehouse.read_series("daily_series", settings.series_id)
        files = monitoring.intake_files(warehouse, settings.series_id)
        made = decisions.read_decisions(warehouse, settings.series_id)
        alerts, until = alerts_window(warehouse)
    drifts = monitoring.drift(daily, reference.training_end, thresholds.window_days)
    signals = monitoring.statuses(forecasts, reference, drifts, files, thresholds)
    return MonitoringView(signals, forecasts, files, monitoring.data_quality_over_time(files), drifts, thresholds,
                          reference, made, alerts, until)


@dataclass(frozen=True)
class DataQualityView:
    """The data quality page: files taken in, ingest runs, errors by kind per week, quarantined rows."""

    files: pd.DataFrame  # intake_files of the series, oldest first
    runs: pd.DataFrame  # dq_runs (every ingest: the pipeline's and the cycles'), newest first
    quality: pd.DataFrame  # monitoring.data_quality_over_time of the files
    quarantine: pd.DataFrame  # the latest 1,000 quarantined rows, newest first
    thresholds: monitoring.Thresholds


def data_quality_view(settings: Settings) -> DataQualityView:
    with read_warehouse(settings) as warehouse:
        files = monitoring.intake_files(warehouse, settings.series_id)
        runs = warehouse.query("select_dq_runs", [settings.series_id])
        quarantine = warehouse.query("select_quarantine_recent", [settings.series_id])
    return DataQualityView(files, runs, monitoring.data_quality_over_time(files), quarantine,
                           monitoring.Thresholds.from_settings(settings))


def retraining(settings: Settings) -> pd.DataFrame:
    """Every retraining decision of the series, oldest first (``model_decisions``)."""
    with read_warehouse(settings) as warehouse:
        return decisions.read_decisions(warehouse, settings.series_id)


def registry_versions(settings: Settings) -> list[ModelVersion]:
    """Every registered version of ``registry_model``, newest first; empty when none was registered."""
    try:
        return Registry.from_settings(settings).versions()
    except Exception as exc:  # noqa: BLE001 - MLflow's client raises its own kinds when its store is unreadable
        raise RegistryUnavailable(
            f"The model registry ({settings.registry_model} in {settings.mlflow_dir}) cannot be read: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. Check mlflow_dir "
            f"({where('mlflow_dir')}) or MLFLOW_TRACKING_URI.") from None
