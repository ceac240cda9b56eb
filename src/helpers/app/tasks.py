"""Ploomber function tasks, and the checks of the pipeline's products.

Each task takes its ``product`` (and ``upstream``) plus params from ``pipeline.yaml`` and
does one call into the helpers. Each ``check_*`` function is a task's ``on_finish`` hook in
``pipeline.yaml``: it raises :class:`ProductError` naming the file when the product is not
what the project can use. Ploomber runs it after the task; :mod:`helpers.app.pipeline` also
runs it on the products it finds before a build, and deletes those that fail.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import nbformat

from helpers.ab import calibration as abcalibration
from helpers.app import findings
from helpers.ab.inputs import ABConfig
from helpers.ab.store import load_configured
from helpers.ab.validation import validate_experiments
from helpers.core.experiment_specs import parse_specs
from helpers.core.files import write_atomic
from helpers.core.paths import resolve
from helpers.core.provenance import file_sha256, stamp, utc_now
from helpers.core.settings import load_settings
from helpers.data.ingest import ingest
from helpers.data.quality import read_source
from helpers.data.series import load_series
from helpers.forecast import artifact, comparison
from helpers.lifecycle import registry
from helpers.lifecycle.tracking import REGISTRY_ENV, TRACKING_ENV, without_credentials
from helpers.operate.signal_snapshot import SIGNALS_NAME
from helpers.publish import release
from helpers.publish.site import monitoring_site, render_reports, site_link
from helpers.warehouse import Warehouse


def experiment_ids() -> list[str]:
    """The experiments the pipeline analyses (the ``bayesian_ab`` grid): the configured ones,
    then those in ``ab_source_file``. Reads the settings as ``load_settings`` does (env.yaml,
    the ``HELPERS_PROFILE`` overlay, ``HELPERS_*`` variables)."""
    settings = load_settings()
    ids = [spec.experiment_id for spec in parse_specs(settings.ab_experiments)]
    if settings.ab_source_file:
        frame = read_source(settings.ab_source_file, settings.encoding)
        if "experiment_id" in frame:
            valid = validate_experiments(frame, str(settings.ab_source_file)).clean
            ids += [e for e in sorted(valid["experiment_id"].unique()) if e not in ids]
    return ids


def ingest_task(product: Any, resources_: dict[str, str], series_id: str, source_file: str, timestamp_col: str,
                target_col: str, temperature_col: str, workday_col: str, freq: str, target_min: str,
                target_max: str, warehouse_backend: str, warehouse_path: str, encoding: str | None = None) -> None:
    """Validate and load the source file; write the run report (JSON) as the product.

    The parameters are the settings keys from ``env.yaml``; ``resources_`` names the source
    file, which Ploomber hashes so that a changed file re-runs the task.
    """
    settings = load_settings(
        series_id=series_id, source_file=source_file, timestamp_col=timestamp_col, target_col=target_col,
        temperature_col=temperature_col, workday_col=workday_col, freq=freq, target_min=target_min,
        target_max=target_max, warehouse_backend=warehouse_backend, warehouse_path=warehouse_path,
        encoding=encoding,
    )
    report = ingest(settings)
    path = Path(str(product))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.to_json())


def experiments_task(product: Any, upstream: Any, ab_experiments: str, ab_seed: str, ab_scale: str,
                     ab_source_file: str, ab_plan_file: str, warehouse_backend: str, warehouse_path: str) -> None:
    """Generate the configured A/B experiments (and load ``ab_source_file`` with the plans of
    ``ab_plan_file``); write the load reports."""
    settings = load_settings(ab_experiments=ab_experiments, ab_seed=ab_seed, ab_scale=ab_scale,
                             ab_source_file=ab_source_file, ab_plan_file=ab_plan_file,
                             warehouse_backend=warehouse_backend, warehouse_path=warehouse_path)
    with Warehouse.from_settings(settings) as warehouse:
        loads = load_configured(warehouse, settings)
    path = Path(str(product))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(load) for load in loads], indent=1))


def calibration_task(product: Any, ab_calibration_sims: str, ab_seed: str, ab_rope: str, ab_mde: str, ab_alpha: str,
                     ab_power: str) -> None:
    """Simulate the A/B methods' error rates and coverage (:mod:`helpers.ab.calibration`) once for
    every experiment's report; write the table with the settings that made it."""
    settings = load_settings(ab_calibration_sims=ab_calibration_sims, ab_seed=ab_seed, ab_rope=ab_rope, ab_mde=ab_mde,
                             ab_alpha=ab_alpha, ab_power=ab_power)
    abcalibration.write_calibration(Path(str(product)), ABConfig.from_settings(settings))


def _notebook(products: Any) -> Path | None:
    """The executed notebook among one task's products (key ``nb``); None for a task without one."""
    try:
        return Path(str(products["nb"]))
    except (KeyError, TypeError):  # a single file product (the artifact), or a grid's mapping
        return None


def _notebooks(upstream: Any) -> dict[str, Path]:
    """Executed notebooks upstream by task name, one task or a grid of tasks (``name-*``) per key.

    Pages are named after the tasks: Ploomber suffixes a grid's product files with an index
    (``bayesian_ab-checkout_flow-0.ipynb``), its task names are the stable ones. Upstream
    tasks without a notebook (``fit_final``) are there for the order only.
    """
    paths = {}
    for name in upstream:
        products = upstream[name]
        own = _notebook(products)
        if own is not None:
            paths[name] = own
        elif isinstance(products, dict):
            paths.update({task: nb for task in products if (nb := _notebook(products[task])) is not None})
    return paths


def _finding_sources(upstream: Any, monitoring: Path) -> findings.Sources:
    """Where the landing page's findings come from: the upstream products (a pipeline without
    some of them, tests/reliability's small project, has fewer findings), the last cycle's
    signals and the warehouse's retraining decisions."""
    names = list(upstream)
    settings = load_settings()

    def part(task: str, key: str | None = None) -> Path | None:
        if task not in names:
            return None
        products = upstream[task]
        try:
            return Path(str(products[key] if key else products))
        except (KeyError, TypeError):
            return None

    def verdict(products: Any) -> Path | None:
        try:
            return Path(str(products["verdict"]))
        except (KeyError, TypeError):
            return None

    verdicts = {}
    for name in names:  # one experiment's task, or a grid of them (a mapping of task names)
        tasks = upstream[name] if isinstance(upstream[name], dict) else {name: upstream[name]}
        for task, products in tasks.items():
            if task.startswith("bayesian_ab-") and (path := verdict(products)) is not None:
                verdicts[task.removeprefix("bayesian_ab-")] = path
    published = (monitoring / "index.html").exists()
    return findings.Sources(
        ingest=part("ingest"), hypotheses=part("hypothesis_tests", "results"),
        selection=part("model_comparison", "selection"), registration=part("register"),
        verdicts=verdicts,
        signals=settings.forecast_log_dir / SIGNALS_NAME,
        monitoring_link=f"../{monitoring.name}/monitoring.html" if published else None,
        decisions=findings.warehouse_decisions(settings))


def _registration(product: Any) -> dict[str, Any]:
    return json.loads(Path(str(product)).read_text(encoding="utf-8"))


def render_task(product: Any, upstream: Any, reports: str, source_file: str, run_parameters: str | dict,
                resources_: dict[str, str]) -> None:
    """Render the problem statement and every executed notebook upstream into a fresh folder,
    then publish it at ``reports`` (:mod:`helpers.publish.release`); the product records it.

    The task runs last (everything else is upstream of it), so the pages are published only
    when every other task succeeded. ``resources_`` names the Markdown pages (Ploomber
    re-runs the task when they change); ``run_parameters`` (JSON, every setting of the run)
    goes into each page's provenance.
    """
    notebooks = _notebooks(upstream)
    notes = [f"Model registry: {_registration(upstream['register'])['note']}."] if "register" in list(upstream) \
        else []  # a pipeline without the registry (tests/reliability's small project)
    pages = [resolve(path) for path in resources_.values()]
    # Ploomber hands a placeholder that looks like a dict over as one.
    parameters = json.loads(run_parameters) if isinstance(run_parameters, str) else run_parameters
    record = stamp(parameters, resolve(source_file))
    link = Path(reports)
    folder = release.new_folder(link)
    try:
        found = findings.findings(_finding_sources(upstream, monitoring_site(link)))
        if any("Model registry:" in finding.text for finding in found):
            notes = []  # the forecast model's finding says which version the run registered
        render_reports(notebooks, folder, pages=pages, stamp=record, more=[("Operations", [
            site_link(monitoring_site(link), "Monitoring of the served forecast", "`make operate`")])], notes=notes,
            findings=found)
    except Exception as exc:
        raise ReportsError(f"rendering the reports failed ({type(exc).__name__}: {exc}); the partial pages are in "
                           f"{folder}; {link} still shows the last good reports. Fix the cause and run "
                           "`make run` again.") from exc
    release.publish(link, folder)
    path = Path(str(product))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"reports": str(link), "folder": str(folder), "run_time_utc": record["run_time_utc"],
                                "pages": sorted(p.name for p in folder.glob("*.html"))}, indent=1))


# -- product checks: on_finish hooks (pipeline.yaml), and helpers.app.pipeline runs them on the products it finds
class ProductError(ValueError):
    """A product fails its check; ``path`` is the file to rebuild, the message says what is wrong."""

    def __init__(self, path: str | Path, message: str):
        self.path = Path(path)
        super().__init__(message)


def _broken(path: Path, problem: str) -> ProductError:
    return ProductError(path, f"{path}: {problem}; `make run` makes it again")


class ReportsError(RuntimeError):
    """The reports could not be rendered; the message says where the partial pages are."""


def check_notebook(product: Any) -> None:
    """The executed notebook (key ``nb``) reads as a notebook."""
    path = _notebook(product)
    try:
        nbformat.read(path, as_version=4)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # NotJSONError is a ValueError
        raise _broken(path, f"not a readable notebook ({type(exc).__name__}: {exc})") from exc


def check_comparison(product: Any) -> None:
    """The model comparison notebook reads, and its ``selection`` reads as a selection record with
    the per-fold metrics the tracking store logs (older records lack them)."""
    check_notebook(product)
    path = Path(str(product["selection"]))
    try:
        _, record = comparison.read_selection(path)
    except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise _broken(path, f"not a readable model selection ({type(exc).__name__}: {exc})") from exc
    if not isinstance(record.get("folds"), list):
        raise _broken(path, "a model selection without per-fold metrics (written before they were recorded)")


def check_calibration(product: Any) -> None:
    """The A/B calibration table reads, with the settings that made it
    (:func:`helpers.ab.calibration.read_record`)."""
    path = Path(str(product))
    try:
        abcalibration.read_record(path)
    except abcalibration.CalibrationRecordError as exc:
        raise _broken(path, f"not a readable A/B calibration table ({exc})") from exc


def check_artifact(product: Any) -> None:
    """The forecast artifact loads (:func:`helpers.forecast.artifact.load_artifact`)."""
    try:
        artifact.load_artifact(str(product))
    except artifact.ArtifactError as exc:
        raise ProductError(str(product), str(exc)) from exc


def check_registration(product: Any) -> None:
    """The registration record reads, and the registry it names is the one the environment names
    now: a local SQLite store whose file still exists, or the server of ``MLFLOW_REGISTRY_URI`` /
    ``MLFLOW_TRACKING_URI``. A record that fails (the store deleted, or the variable changed) makes
    the next build register the artifact again, there."""
    path = Path(str(product))
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        recorded, version = str(record["registry_uri"]), int(record["version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _broken(path, f"not a readable registration record ({type(exc).__name__}: {exc})") from exc
    named = without_credentials(os.environ.get(REGISTRY_ENV, "").strip() or os.environ.get(TRACKING_ENV, "").strip())
    if named and named != recorded:
        raise _broken(path, f"version {version} was registered in {recorded}, but the environment now names {named}")
    if not named and not recorded.startswith("sqlite:///"):
        raise _broken(path, f"version {version} was registered in {recorded}, but {TRACKING_ENV} is no longer set")
    if recorded.startswith("sqlite:///") and not Path(recorded.removeprefix("sqlite:///")).exists():
        raise _broken(path, f"version {version} was registered in {recorded}, which no longer exists")


def check_reports(product: Any) -> None:
    """The record of the published reports reads, and the reports it names are still published."""
    path = Path(str(product))
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        link, folder = Path(record["reports"]), Path(record["folder"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _broken(path, f"not a readable reports record ({type(exc).__name__}: {exc})") from exc
    if not (folder / "index.html").exists() or link.resolve() != folder.resolve():
        raise _broken(path, f"{link} no longer shows the pages of {folder}")


def fit_final_task(product: Any, upstream: Any, series_id: str, warehouse_backend: str, warehouse_path: str,
                   max_fill_steps: str, profile: str, source_file: str | None = None) -> None:
    """Fit the selected daily model, its ensemble members and the ensemble on all data; write the
    artifact with the intervals the comparison chose to serve. ``source_file`` is the build's data
    file, whose hash the artifact (and the registry's lineage) records."""
    settings = load_settings(series_id=series_id, warehouse_backend=warehouse_backend,
                             warehouse_path=warehouse_path, max_fill_steps=max_fill_steps, profile=profile,
                             source_file=source_file or None)
    config, record = comparison.read_selection(upstream["model_comparison"]["selection"])
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        view = load_series(warehouse, settings.series_id, "daily", max_fill_steps=settings.max_fill_steps)
    frame = comparison.prepare_frame(view)
    payload = comparison.final_artifact(frame, config, record, series_id=settings.series_id,
                                        data_sha256=file_sha256(settings.source_file), parameters=settings.as_env(),
                                        created_utc=utc_now().isoformat(timespec="seconds"))
    artifact.write_artifact(Path(str(product)), payload)


def register_task(product: Any, upstream: Any, mlflow_dir: str, registry_model: str, mlflow_experiment: str) -> None:
    """Log the model comparison as an MLflow run and register its forecast artifact
    (:func:`helpers.lifecycle.registry.register_comparison`); the product records the version."""
    settings = load_settings(mlflow_dir=mlflow_dir, registry_model=registry_model, mlflow_experiment=mlflow_experiment)
    models = registry.Registry.from_settings(settings)
    done = registry.register_comparison(models, str(upstream["model_comparison"]["selection"]),
                                        str(upstream["fit_final"]))
    write_atomic(Path(str(product)), json.dumps({
        "registered_model": models.name, "version": done.version.version, "aliases": list(done.version.aliases),
        "new": done.new, "run_id": done.version.run_id, "note": done.note,
        "created_utc": done.version.lineage.get("created_utc"), "data_sha256": done.version.lineage.get("data_sha256"),
        "tracking_uri": models.store.runs_where, "registry_uri": models.store.where}, indent=1))
