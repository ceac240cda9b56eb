"""Session set-up shared by the unit tests and nbval.

nbval runs the notebooks in ``notebooks/`` with their default parameters, which fall back
to the project settings. Here the session selects the fast ``test`` profile and ingests the
default data and generates the configured A/B experiments into a temporary warehouse, so the notebooks read real data without touching
the user's ``data/warehouse.duckdb``; MLflow runs and registered models go to a temporary store,
never ``data/mlflow`` or a server named by ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

os.environ["PLOOMBER_STATS_ENABLED"] = "false"
_TMP = Path(tempfile.mkdtemp(prefix="helpers-test-"))


_coverage = None


def pytest_configure(config):
    """Under ``coverage run`` (``make test``), an xdist worker measures itself: the controller
    runs no test, and measuring every subprocess instead would also trace the notebook kernels."""
    global _coverage
    if hasattr(config, "workerinput") and os.environ.get("COVERAGE_RUN"):
        import coverage

        _coverage = coverage.Coverage(config_file=str(Path(__file__).with_name("pyproject.toml")), data_suffix=True)
        _coverage.start()


def pytest_unconfigure(config):
    if _coverage is not None:
        _coverage.stop()
        _coverage.save()


def pytest_collection_modifyitems(session, config, items):
    """Longest first: files with tests marked ``slow`` (most of them first), then the notebooks
    (nbval), then the rest, each file kept whole and in collection order. ``make test`` hands
    whole files to the xdist workers in this order (``--dist loadfile --no-loadscope-reorder``),
    so a long file does not start last and leave one worker running it alone."""
    def rank(item) -> int:
        if item.get_closest_marker("slow"):
            return 0
        return 1 if str(item.path).endswith(".ipynb") else 2

    files: dict[Path, tuple[int, int]] = {}
    for item in items:
        best, slow = files.get(item.path, (2, 0))
        this = rank(item)
        files[item.path] = (min(best, this), slow - (this == 0))
    order = {path: (*files[path], position) for position, path in enumerate(files)}
    items.sort(key=lambda item: order[item.path])  # stable: collection order within a file


def pytest_sessionstart(session):
    if getattr(session.config.option, "numprocesses", None) and not hasattr(session.config, "workerinput"):
        return  # the pytest-xdist controller runs no test; each worker sets up its own warehouse
    from helpers.core.settings import load_settings
    from helpers.ab.store import load_configured
    from helpers.data.ingest import ingest
    from helpers.warehouse import Warehouse

    os.environ.update({
        "HELPERS_PROFILE": "test",
        "HELPERS_WAREHOUSE_PATH": str(_TMP / "warehouse.duckdb"),
        "HELPERS_PRODUCTS": str(_TMP / "products"),
        "HELPERS_REPORTS": str(_TMP / "reports"),
        "HELPERS_FORECAST_LOG_DIR": str(_TMP / "forecast_log"),
        "HELPERS_MLFLOW_DIR": str(_TMP / "mlflow"),  # nothing a test registers lands in data/mlflow
    })
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # nor on a team's server
        os.environ.pop(name, None)
    settings = load_settings()
    ingest(settings)
    with Warehouse.from_settings(settings) as warehouse:
        load_configured(warehouse, settings)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_TMP, ignore_errors=True)
