"""Ploomber function tasks. Each takes its ``product`` (and ``upstream``) plus params from
``pipeline.yaml`` and does one call into the helpers."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from helpers.ab.store import load_configured
from helpers.ab.validation import validate_experiments
from helpers.core.experiment_specs import parse_specs
from helpers.core.paths import resolve
from helpers.core.provenance import file_sha256, git_commit, package_versions, stamp, utc_now
from helpers.core.settings import load_settings
from helpers.data.ingest import ingest
from helpers.data.quality import read_source
from helpers.data.series import load_series
from helpers.forecast import artifact, calibration, comparison
from helpers.publish.site import render_reports
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


def _notebooks(upstream: Any) -> dict[str, Path]:
    """Executed notebooks upstream by task name, one task or a grid of tasks (``name-*``) per key.

    Pages are named after the tasks: Ploomber suffixes a grid's product files with an index
    (``bayesian_ab-checkout_flow-0.ipynb``), its task names are the stable ones.
    """
    paths = {}
    for name in upstream:
        products = upstream[name]
        if "nb" in products:
            paths[name] = Path(str(products["nb"]))
        else:
            paths.update({task: Path(str(products[task]["nb"])) for task in products})
    return paths


def render_task(product: Any, upstream: Any, reports: str, source_file: str, run_parameters: str | dict,
                resources_: dict[str, str]) -> None:
    """Render the problem statement and every executed notebook upstream into ``reports/``.

    ``resources_`` names the Markdown pages (Ploomber re-runs the task when they change);
    ``run_parameters`` (JSON, every setting of the run) goes into each page's provenance.
    """
    notebooks = _notebooks(upstream)
    pages = [resolve(path) for path in resources_.values()]
    # Ploomber hands a placeholder that looks like a dict over as one.
    parameters = json.loads(run_parameters) if isinstance(run_parameters, str) else run_parameters
    record = stamp(parameters, resolve(source_file))
    render_reports(notebooks, Path(reports), index=Path(str(product)), pages=pages, stamp=record)


def fit_final_task(product: Any, upstream: Any, series_id: str, warehouse_backend: str, warehouse_path: str,
                   max_fill_steps: str, profile: str) -> None:
    """Fit the selected daily model, its ensemble members and the ensemble on all data; write the
    artifact with the intervals the comparison chose to serve."""
    settings = load_settings(series_id=series_id, warehouse_backend=warehouse_backend,
                             warehouse_path=warehouse_path, max_fill_steps=max_fill_steps, profile=profile)
    config, record = comparison.read_selection(upstream["model_comparison"]["selection"])
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        view = load_series(warehouse, settings.series_id, "daily", max_fill_steps=settings.max_fill_steps)
    frame = comparison.prepare_frame(view)
    payload = {
        "schema_version": artifact.SCHEMA_VERSION,
        "created_utc": utc_now().isoformat(timespec="seconds"),
        "series_id": settings.series_id,
        "frequency": config.freq,
        "training_start": frame["ds"].iloc[0].isoformat(),
        "training_end": frame["ds"].iloc[-1].isoformat(),
        "data_sha256": file_sha256(settings.source_file),
        "selected_model": record["selected"],
        "models": comparison.artifact_models(frame, config, record["selected"], record["members"], record["metrics"],
                                             calibration.from_record(record.get("calibration"))),
        "interval_calibration": comparison.calibration_metadata(record),
        "evaluation_cutoffs": record["evaluation_cutoffs"],
        "parameters": {**settings.as_env(), "comparison": comparison.config_dict(config)},
        "packages": package_versions(),
        "git_commit": git_commit(),
    }
    artifact.write_artifact(Path(str(product)), payload)
