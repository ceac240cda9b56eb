"""Ploomber function tasks. Each takes its ``product`` (and ``upstream``) plus params from
``pipeline.yaml`` and does one call into the helpers."""

from __future__ import annotations

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


def render_task(product: Any, upstream: Any, reports: str, resources_: dict[str, str]) -> None:
    """Render the problem statement and every executed notebook upstream into ``reports/``.

    ``resources_`` names the Markdown pages (Ploomber re-runs the task when they change).
    """
    notebooks = [Path(str(upstream[name]["nb"])) for name in upstream]
    pages = [resolve(path) for path in resources_.values()]
    render_reports(notebooks, Path(reports), index=Path(str(product)), pages=pages)
