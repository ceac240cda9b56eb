"""MLflow stores for the lifecycle tests: real SQLite stores in temporary folders, each a copy
of the session's empty store (``mlflow_store_db`` in tests/conftest.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers.lifecycle.tracking import Store
from tests.support import artifact_payload


@pytest.fixture(autouse=True)
def no_team_server(monkeypatch):
    """Tests use their own stores, never one named by the environment."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


def local_store(folder: Path, experiment: str = "demand-forecast") -> Store:
    """The store the settings give for ``mlflow_dir=folder``."""
    return Store.from_settings(SimpleNamespace(mlflow_dir=folder, mlflow_experiment=experiment))


def copy_store(db: Path, folder: Path) -> Path:
    """``folder`` holding a copy of the database ``db`` (its artifacts stay where ``db``'s runs put them)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(db, folder / "mlflow.db")
    return folder


def write_payload(path: Path, created: str, series_id: str = "s", frequency: str = "1D", **changes) -> Path:
    """A valid forecast artifact (``tests.support.artifact_payload``: models ``a`` and ``ensemble``)."""
    payload = {**artifact_payload(n=5, models=("a", "ensemble")), "created_utc": created, "series_id": series_id,
               "frequency": frequency, **changes}
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture(scope="session")
def comparison_products(tmp_path_factory) -> tuple[Path, Path]:
    """``selection.json`` and ``forecast_artifact.json`` as the pipeline makes them: a daily series
    with a weekly pattern ingested, four fast models compared on four folds, the selected one fitted
    (``fit_final_task``). A few seconds, once per test process."""
    import numpy as np
    import pandas as pd

    from helpers.app.tasks import fit_final_task
    from helpers.core.settings import load_settings
    from helpers.data.ingest import ingest
    from helpers.data.series import load_series
    from helpers.forecast import comparison as cmp
    from helpers.warehouse import Warehouse

    folder = tmp_path_factory.mktemp("comparison")
    ds = pd.date_range("2014-01-06", periods=24 * 84, freq="1h")
    demand = np.take((4.0, 4.5, 5.0, 5.5, 6.0, 2.0, 1.5), ds.dayofweek) + np.random.default_rng(0).normal(0, .05, len(ds))
    pd.DataFrame({"time": ds.strftime("%Y-%m-%d %H:%M:%S"), "load": demand.round(4)}).to_csv(folder / "load.csv",
                                                                                            index=False)
    overrides = {"SOURCE_FILE": folder / "load.csv", "SERIES_ID": "weekly", "TIMESTAMP_COL": "time",
                 "TARGET_COL": "load", "TEMPERATURE_COL": "", "WORKDAY_COL": "", "FREQ": "1h",
                 "WAREHOUSE_PATH": folder / "wh.duckdb", "PRODUCTS": folder / "products"}
    with pytest.MonkeyPatch.context() as env:
        for key, value in overrides.items():
            env.setenv(f"HELPERS_{key}", str(value))
        settings = load_settings()
        ingest(settings)
        with Warehouse.from_settings(settings, read_only=True) as warehouse:
            frame = cmp.prepare_frame(load_series(warehouse, "weekly", "daily"))
        config = cmp.ComparisonConfig.parse("daily", 7, 4, 28, "naive,seasonal_naive,window_average,ses", 14)
        selection = cmp.write_selection(cmp.run_comparison(frame, config), folder / "products" / "selection.json")
        artifact = folder / "products" / "forecast_artifact.json"
        fit_final_task(artifact, {"model_comparison": {"selection": str(selection)}}, series_id="weekly",
                       warehouse_backend="duckdb", warehouse_path=str(folder / "wh.duckdb"), max_fill_steps="4",
                       profile="test")
    return selection, artifact
