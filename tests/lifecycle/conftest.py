"""MLflow stores for the lifecycle tests: real SQLite stores in temporary folders.

Making a store's tables costs about 4 s of migrations, so one empty store is made per test
process and copied for each test that needs one.
"""

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


@pytest.fixture(scope="session")
def empty_store_db(tmp_path_factory) -> Path:
    """An MLflow SQLite database with its tables made and nothing in it."""
    folder = tmp_path_factory.mktemp("mlflow-empty")
    local_store(folder).client().search_experiments()
    return folder / "mlflow.db"


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
