"""A/B experiments in the warehouse: load validated users, and read them back for analysis.

Generated and uploaded experiments are loaded by the same function: a loaded experiment
replaces the stored one of the same id in one transaction; bad rows go to ``quarantine``
with their reasons, so nothing read is lost.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pandas as pd

from helpers.ab.simulation import generate
from helpers.ab.validation import validate_experiments
from helpers.core.experiment_specs import ExperimentConfigError, ExperimentSpec, parse_specs
from helpers.core.provenance import utc_now
from helpers.data.quality import DataQualityError, read_source
from helpers.warehouse import TABLE_COLUMNS, Warehouse


# -- loading ------------------------------------------------------------------------------------------
@dataclass
class ExperimentLoad:
    run_id: str
    source: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    experiments: list[str]
    findings: list[dict]

    def summary(self) -> str:
        return (f"{self.source}: {self.rows_read} rows read, {self.rows_loaded} loaded, {self.rows_quarantined} "
                f"quarantined; experiments {', '.join(self.experiments)}")


def load_experiments(warehouse: Warehouse, frame: pd.DataFrame, source: str, controls: dict[str, str] | None = None,
                     descriptions: dict[str, str] | None = None, run_id: str | None = None) -> ExperimentLoad:
    """Validate ``frame`` and publish its experiments in one transaction (see the module docstring).

    ``controls`` names each experiment's control variant; by default a variant called
    ``control`` if there is one, else the first variant in alphabetical order.
    """
    result = validate_experiments(frame, source)  # raises before any write
    now = utc_now()
    run_id = run_id or f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    clean = result.clean
    if clean.empty:
        raise DataQualityError(f"{source}: no valid rows to load ({result.rows_read} read, all quarantined)")
    experiments = sorted(clean["experiment_id"].unique())
    catalog = []
    for experiment_id in experiments:
        variants = sorted(clean.loc[clean["experiment_id"] == experiment_id, "variant"].unique())
        control = (controls or {}).get(experiment_id) or ("control" if "control" in variants else variants[0])
        if control not in variants:
            raise DataQualityError(f"{source}: control {control!r} of {experiment_id} is not among its variants "
                                   f"{variants}")
        catalog.append({"experiment_id": experiment_id, "control": control,
                        "description": (descriptions or {}).get(experiment_id, ""), "source": source,
                        "updated_at": pd.Timestamp(now)})
    users = clean.assign(run_id=run_id, converted=clean["converted"].astype("int16"))[
        list(TABLE_COLUMNS["ab_users"])]
    quarantine = pd.DataFrame({
        "run_id": run_id, "series_id": result.quarantine["experiment_id"], "source_file": source,
        "row_number": result.quarantine["row_number"].astype("int32"), "reasons": result.quarantine["reasons"],
        "record": result.quarantine["record"], "quarantined_at": pd.Timestamp(now),
    }, columns=TABLE_COLUMNS["quarantine"])
    warehouse.execute("create_ab_stages")
    try:
        warehouse.load_frame("stage_ab_users", users)
        warehouse.load_frame("stage_ab_experiments", pd.DataFrame(catalog, columns=TABLE_COLUMNS["ab_experiments"]))
        warehouse.load_frame("stage_quarantine", quarantine)
        with warehouse.transaction():
            warehouse.execute("replace_experiments")
    finally:
        warehouse.execute("drop_ab_stages")
    return ExperimentLoad(run_id, source, result.rows_read, len(users), len(quarantine), experiments,
                          [f.as_dict() for f in result.findings])


def generate_all(warehouse: Warehouse, specs: tuple[ExperimentSpec, ...], seed: int, scale: float = 1.0) -> ExperimentLoad:
    """Generate every configured experiment and load them (replacing earlier generated copies)."""
    if not specs:
        raise ExperimentConfigError("no experiments configured in ab_experiments")
    frame = pd.concat([generate(spec, seed, scale) for spec in specs], ignore_index=True)
    return load_experiments(warehouse, frame, "generated", {s.experiment_id: s.control for s in specs},
                            {s.experiment_id: s.description for s in specs})


# -- reading back -------------------------------------------------------------------------------------
def experiment_list(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.query("ab_experiment_list")


def experiment_info(warehouse: Warehouse, experiment_id: str) -> dict[str, Any]:
    """The catalog row of one experiment; a clear error naming the stored ones when unknown."""
    listing = experiment_list(warehouse)
    match = listing[listing["experiment_id"] == experiment_id]
    if match.empty:
        known = ", ".join(listing["experiment_id"]) or "none (run make run, or load a file)"
        raise LookupError(f"no experiment {experiment_id!r} in the warehouse; stored: {known}")
    return match.iloc[0].to_dict()


def variant_summary(warehouse: Warehouse, experiment_id: str, control: str) -> pd.DataFrame:
    """Per-variant sufficient statistics (SQL), control first."""
    summary = warehouse.query("ab_variant_summary", [experiment_id])
    for column in ("users", "conversions", "payers"):
        summary[column] = summary[column].astype(int)
    order = [control, *[v for v in summary["variant"] if v != control]]
    return summary.set_index("variant").loc[[v for v in order if v in set(summary["variant"])]].reset_index()


def daily_cumulative(warehouse: Warehouse, experiment_id: str) -> pd.DataFrame:
    frame = warehouse.query("ab_daily_cumulative", [experiment_id])
    for column in ("users", "conversions"):
        frame[column] = frame[column].astype(int)
    return frame


def user_revenue(warehouse: Warehouse, experiment_id: str) -> pd.DataFrame:
    return warehouse.query("ab_user_revenue", [experiment_id])


def load_configured(warehouse: Warehouse, settings) -> list[ExperimentLoad]:
    """Generate the configured experiments and load ``ab_source_file`` when one is set."""
    loads = []
    specs = parse_specs(settings.ab_experiments)
    if specs:
        loads.append(generate_all(warehouse, specs, settings.ab_seed, settings.ab_scale))
    if settings.ab_source_file:
        source = str(settings.ab_source_file)
        loads.append(load_experiments(warehouse, read_source(source), source))
    return loads
