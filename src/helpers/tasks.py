"""Ploomber function tasks. Each takes its ``product`` (and ``upstream``) plus params from
``pipeline.yaml`` and does one call into the helpers."""

from __future__ import annotations

import json

from pathlib import Path
from typing import Any

from helpers.config import load_settings
from helpers.ingest import ingest
from helpers.paths import resolve
from helpers.reports import render_reports


def ingest_task(product: Any, resources_: dict[str, str], series_id: str, source_file: str, timestamp_col: str,
                target_col: str, temperature_col: str, workday_col: str, freq: str, target_min: str,
                target_max: str, warehouse_backend: str, warehouse_path: str) -> None:
    """Validate and load the source file; write the run report (JSON) as the product.

    The parameters are the settings keys from ``env.yaml``; ``resources_`` names the source
    file, which Ploomber hashes so that a changed file re-runs the task.
    """
    settings = load_settings(
        series_id=series_id, source_file=source_file, timestamp_col=timestamp_col, target_col=target_col,
        temperature_col=temperature_col, workday_col=workday_col, freq=freq, target_min=target_min,
        target_max=target_max, warehouse_backend=warehouse_backend, warehouse_path=warehouse_path,
    )
    report = ingest(settings)
    path = Path(str(product))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.to_json())


def experiments_task(product: Any, upstream: Any, ab_experiments: str, ab_seed: str, ab_scale: str,
                     ab_source_file: str, warehouse_backend: str, warehouse_path: str) -> None:
    """Generate the configured A/B experiments (and load ``ab_source_file``); write the load reports."""
    import json
    from dataclasses import asdict

    from helpers.experiments import load_task_data
    from helpers.warehouse import Warehouse

    settings = load_settings(ab_experiments=ab_experiments, ab_seed=ab_seed, ab_scale=ab_scale,
                             ab_source_file=ab_source_file, warehouse_backend=warehouse_backend,
                             warehouse_path=warehouse_path)
    with Warehouse.from_settings(settings) as warehouse:
        loads = load_task_data(warehouse, settings)
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
    from helpers.provenance import stamp

    notebooks = _notebooks(upstream)
    pages = [resolve(path) for path in resources_.values()]
    # Ploomber hands a placeholder that looks like a dict over as one.
    parameters = json.loads(run_parameters) if isinstance(run_parameters, str) else run_parameters
    record = stamp(parameters, resolve(source_file))
    render_reports(notebooks, Path(reports), index=Path(str(product)), pages=pages, stamp=record)


def fit_final_task(product: Any, upstream: Any, series_id: str, warehouse_backend: str, warehouse_path: str,
                   max_fill_steps: str, profile: str) -> None:
    """Fit the selected daily model, its ensemble members and the ensemble on all data; write the artifact."""
    from helpers import artifact, comparison
    from helpers.provenance import file_sha256, git_commit, package_versions, utc_now
    from helpers.series import load_series
    from helpers.warehouse import Warehouse

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
        "models": comparison.artifact_models(frame, config, record["selected"], record["members"], record["metrics"]),
        "evaluation_cutoffs": record["evaluation_cutoffs"],
        "parameters": {**settings.as_env(), "comparison": comparison.config_dict(config)},
        "packages": package_versions(),
        "git_commit": git_commit(),
    }
    artifact.write_artifact(Path(str(product)), payload)
