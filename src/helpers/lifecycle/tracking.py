"""MLflow tracking of the model comparison: where the store is, and one run per comparison.

The store needs nothing started: ``sqlite:///<mlflow_dir>/mlflow.db``, artifacts under
``<mlflow_dir>/artifacts`` (settings ``mlflow_dir`` and ``mlflow_experiment``). When the
environment variable ``MLFLOW_TRACKING_URI`` is set it wins (a team's tracking server), and
``MLFLOW_REGISTRY_URI`` likewise for the model registry (default: the tracking URI).

:func:`log_comparison` logs one run from the products of the model comparison and the final
fit (``selection.json`` and the forecast artifact), so the notebook stays as it is.

Everything goes through an ``MlflowClient`` bound to the store: MLflow's global tracking URI
(``mlflow.set_tracking_uri``, which also sets ``MLFLOW_TRACKING_URI`` in the environment) is
never touched. ``mlflow`` is imported inside the functions (about 3 s), not with this module.

Command: ``python -m helpers.lifecycle.tracking uri`` prints the tracking URI;
``python -m helpers.lifecycle.tracking ui [--port N]`` serves the MLflow UI on 127.0.0.1
(``make mlflow-ui``). Exit status: 0 ok, 2 refused (a setting, or a store on a server).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers.core.settings import ConfigError, load_settings
from helpers.forecast.artifact import load_artifact

if TYPE_CHECKING:
    from mlflow import MlflowClient

TRACKING_ENV = "MLFLOW_TRACKING_URI"
REGISTRY_ENV = "MLFLOW_REGISTRY_URI"
DB_NAME = "mlflow.db"
#: MLflow's limits (``mlflow.utils.validation``): a parameter value's length, entities per ``log_batch``.
MAX_PARAM_LENGTH = 6000
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
DEFAULT_UI_PORT = 5000


class TrackingError(ValueError):
    """The store or the products cannot be logged as asked; the message says what to change."""


def import_mlflow() -> Any:
    """``mlflow``, imported with its telemetry and download progress bars off (unless set)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    return mlflow


def without_credentials(uri: str) -> str:
    """``uri`` without a ``user:password@`` part, for messages and files others may read."""
    scheme, sep, rest = uri.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}" if sep else uri


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for any other store."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix):]) if uri.startswith(prefix) else None


def store_stamp(uri: str) -> tuple | None:
    """Identity, size and modification time of a local SQLite store's database and write-ahead
    log: every commit changes it, so an unchanged stamp means nothing was written. None for a
    server (which must be asked)."""
    db = sqlite_file(uri)
    if db is None:
        return None
    stamps = []
    for path in (db, db.with_name(db.name + "-wal")):
        try:
            st = path.stat()
        except FileNotFoundError:
            stamps.append(None)
            continue
        stamps.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(stamps)


@dataclass(frozen=True)
class Store:
    """Where runs (``tracking_uri``) and registered models (``registry_uri``) live.

    ``artifact_root`` is a SQLite store's artifact folder, None for a server's (which has its own).
    """

    tracking_uri: str
    registry_uri: str
    experiment: str
    artifact_root: Path | None = None

    @property
    def where(self) -> str:
        """The registry's URI as messages show it (no credentials)."""
        return without_credentials(self.registry_uri)

    @property
    def runs_where(self) -> str:
        """The tracking URI as messages show it (no credentials)."""
        return without_credentials(self.tracking_uri)

    @classmethod
    def from_settings(cls, settings: Any) -> Store:
        """The store of ``settings`` (anything with ``mlflow_dir`` and ``mlflow_experiment``: the
        project's settings, or :func:`helpers.core.settings.mlflow_settings` of the raw ones), unless
        the environment names one."""
        tracking = os.environ.get(TRACKING_ENV, "").strip()
        registry = os.environ.get(REGISTRY_ENV, "").strip()
        if tracking:  # a server keeps its own artifacts; a SQLite file named here keeps them beside it
            db = sqlite_file(tracking)
            return cls(tracking, registry or tracking, settings.mlflow_experiment,
                       db.parent / "artifacts" if db is not None else None)
        folder = Path(settings.mlflow_dir)
        uri = f"sqlite:///{folder / DB_NAME}"
        return cls(uri, registry or uri, settings.mlflow_experiment, folder / "artifacts")

    def exists(self) -> bool:
        """False only for a local SQLite store whose database file was never made (nothing logged yet)."""
        files = [f for f in (sqlite_file(self.tracking_uri), sqlite_file(self.registry_uri)) if f is not None]
        return all(f.exists() for f in files)

    def make_folders(self) -> None:
        """A local store's folders (MLflow makes the database's tables on first use)."""
        for uri in (self.tracking_uri, self.registry_uri):
            if (db := sqlite_file(uri)) is not None:
                db.parent.mkdir(parents=True, exist_ok=True)

    def client(self) -> MlflowClient:
        """A client of this store, its folders made first."""
        self.make_folders()
        return import_mlflow().MlflowClient(self.tracking_uri, self.registry_uri)

    def experiment_id(self, client: MlflowClient) -> str:
        """The experiment's id, made when missing (a local store's artifacts go to ``artifact_root``)."""
        from mlflow.exceptions import MlflowException

        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            location = self.artifact_root.resolve().as_uri() if self.artifact_root is not None else None
            try:
                return client.create_experiment(self.experiment, artifact_location=location)
            except MlflowException as exc:  # made by another process meanwhile
                experiment = client.get_experiment_by_name(self.experiment)
                if experiment is None:
                    raise exc
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(f"the MLflow experiment {self.experiment!r} in {self.runs_where} was deleted; "
                                "restore it in the MLflow UI or choose another name (set mlflow_experiment in "
                                "env.yaml or HELPERS_MLFLOW_EXPERIMENT)")
        return experiment.experiment_id


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else "" if value is None else str(value)


def comparison_params(payload: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The run's parameters from the artifact: ``comparison.<key>`` (the comparison config) and
    ``settings.<key>`` (the run settings); and the keys left out for a value longer than MLflow allows."""
    parameters = dict(payload["parameters"])
    config = parameters.pop("comparison", {})
    params = {**{f"comparison.{k}": _text(v) for k, v in config.items()},
              **{f"settings.{k}": _text(v) for k, v in parameters.items()}}
    long = sorted(k for k, v in params.items() if len(v) > MAX_PARAM_LENGTH)
    return {k: v for k, v in params.items() if k not in long}, long


def comparison_metrics(record: dict[str, Any]) -> list[tuple[str, float, int]]:
    """(key, value, step) of every metric in a selection record: ``fold/<model>/<metric>`` per fold
    (step = fold number, 1 the earliest cutoff), ``cv/<model>/<metric>`` pooled over the evaluation
    folds (the numbers the report and the artifact show), and the selected model's ``selected_cv_mae``
    and ``selected_cv_rmse``."""
    rows = [(f"fold/{model}/{name}", float(value), int(fold["fold"]))
            for fold in record["folds"] for model, metrics in fold["metrics"].items()
            for name, value in metrics.items() if _finite(value)]
    rows += [(f"cv/{model}/{name}", float(value), 0) for model, metrics in record["metrics"].items()
             for name, value in metrics.items() if _finite(value)]
    selected = record["metrics"][record["selected"]]
    rows += [(f"selected_cv_{name}", float(selected[name]), 0) for name in ("mae", "rmse")]
    return rows


def comparison_tags(payload: dict[str, Any], record: dict[str, Any]) -> dict[str, str]:
    """What the run is about: series, training range, selection, data hash, commit, folds."""
    commit = str(payload["git_commit"])
    selected = payload["models"][payload["selected_model"]]["cv"]
    folds = [{"fold": f["fold"], "cutoff": f["cutoff"], "role": f["role"]} for f in record["folds"]]
    note = (f"Model comparison of `{payload['series_id']}` ({payload['frequency']}), trained "
            f"{payload['training_start']} to {payload['training_end']}: selected `{payload['selected_model']}` "
            f"(CV MAE {selected['mae']:.4g}, RMSE {selected['rmse']:.4g} on {len(record['evaluation_cutoffs'])} "
            f"evaluation folds), ensemble of {', '.join(record['members'])}. Data SHA-256 "
            f"{payload['data_sha256'][:12]}, commit {commit[:12]}.")
    return {
        "series_id": str(payload["series_id"]), "frequency": str(payload["frequency"]),
        "training_start": str(payload["training_start"]), "training_end": str(payload["training_end"]),
        "selected_model": str(payload["selected_model"]), "ensemble_members": ",".join(record["members"]),
        "data_sha256": str(payload["data_sha256"]), "git_commit": commit,
        "artifact_created_utc": str(payload["created_utc"]),
        "profile": str(payload["parameters"].get("profile", "")),
        "folds": json.dumps(folds),
        "mlflow.source.git.commit": commit.removesuffix("-dirty"),
        "mlflow.note.content": note,
    }


def _batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def log_comparison(store: Store, selection_path: str | Path, artifact_path: str | Path,
                   client: MlflowClient | None = None) -> str:
    """Log one model comparison as an MLflow run; returns its run id.

    Parameters: the comparison config and the run settings (:func:`comparison_params`); metrics:
    each model's per fold and pooled (:func:`comparison_metrics`); tags: the selection, the data
    hash, the git commit (:func:`comparison_tags`); artifacts: ``selection.json`` and
    ``forecast_artifact.json``. A run that fails part-way is marked FAILED.
    """
    from mlflow.entities import Metric, Param

    from helpers.forecast.comparison import read_selection  # pandas and the models: only when logging

    payload = load_artifact(artifact_path)
    _, record = read_selection(selection_path)
    if "folds" not in record:
        raise TrackingError(f"{selection_path} has no per-fold metrics (written by an older version); "
                            "`make run` writes it again")
    if (record["selected"], record["evaluation_cutoffs"]) != (payload["selected_model"],
                                                             payload["evaluation_cutoffs"]):
        raise TrackingError(f"{selection_path} and {artifact_path} come from different model comparisons; "
                            "`make run` makes them again")
    client = client or store.client()
    run = client.create_run(store.experiment_id(client), run_name=f"comparison {payload['created_utc']}",
                            tags=comparison_tags(payload, record))
    run_id = run.info.run_id
    try:
        params, long = comparison_params(payload)
        if long:
            client.set_tag(run_id, "params_left_out", f"{', '.join(long)} (longer than {MAX_PARAM_LENGTH} characters; "
                                                      "see parameters in forecast_artifact.json)")
        for batch in _batches([Param(k, v) for k, v in params.items()], MAX_PARAMS_PER_BATCH):
            client.log_batch(run_id, params=batch)
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value, step in comparison_metrics(record)]
        for batch in _batches(metrics, MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=batch)
        with tempfile.TemporaryDirectory(prefix="tracking-") as tmp:  # under their usual names, whatever the paths
            shutil.copyfile(selection_path, Path(tmp) / "selection.json")
            shutil.copyfile(artifact_path, Path(tmp) / "forecast_artifact.json")
            client.log_artifacts(run_id, tmp)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id


def ui_command(store: Store, port: int) -> list[str]:
    """``mlflow ui`` on 127.0.0.1:``port`` over a local store (runs and registry)."""
    if sqlite_file(store.tracking_uri) is None:
        raise TrackingError(f"{TRACKING_ENV} points at {store.runs_where}: open that server's own UI; "
                            "make mlflow-ui serves a local store only (unset the variable to use it)")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store.tracking_uri,
               "--registry-store-uri", store.registry_uri, "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]  # one person's UI: one worker starts in a third of the time of mlflow's default 4
    if store.artifact_root is not None:  # experiments made in the UI keep their artifacts beside ours
        command += ["--artifacts-destination", str(store.artifact_root)]
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.lifecycle.tracking",
                                     description="The MLflow tracking store of the project's settings.",
                                     epilog="exit status: 0 ok, 2 refused (a setting, or a store on a server)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("uri", help="print the tracking URI")
    ui = sub.add_parser("ui", help="serve the MLflow UI on 127.0.0.1")
    ui.add_argument("--port", type=int, default=DEFAULT_UI_PORT)
    args = parser.parse_args(argv)
    try:
        store = Store.from_settings(load_settings())
        if args.command == "uri":
            print(store.runs_where)
            return 0
        command = ui_command(store, args.port)
    except (ConfigError, TrackingError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    store.make_folders()
    print(f"MLflow UI of {store.runs_where} on http://127.0.0.1:{args.port} (Ctrl-C stops it)", file=sys.stderr)
    os.execv(command[0], command)
    return 0  # pragma: no cover (execv does not return)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
