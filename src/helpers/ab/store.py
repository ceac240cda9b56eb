"""A/B experiments in the warehouse: load validated users, and read them back for analysis.

Generated and uploaded experiments are loaded by the same function: a loaded experiment
replaces the stored one of the same id in one transaction; bad rows go to ``quarantine``
with their reasons, so nothing read is lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.ab.simulation import generate
from helpers.ab.validation import validate_experiments
from helpers.core.experiment_specs import ExperimentConfigError, ExperimentPlan, ExperimentSpec, parse_plans, parse_specs
from helpers.core.files import unreadable
from helpers.core.provenance import new_run_id, utc_now
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


def resolve_plans(experiments: dict[str, list[str]], plans: dict[str, ExperimentPlan], source: str
                  ) -> dict[str, ExperimentPlan]:
    """A complete plan per experiment: the given one checked against the variants in the data,
    else the defaults (control: a variant called ``control``, else the first alphabetically;
    equal planned shares; no baseline rate)."""
    unknown = sorted(set(plans) - set(experiments))
    if unknown:
        raise DataQualityError(f"{source}: the plan names experiments {unknown} that the file does not hold; "
                               f"the file holds {sorted(experiments)}")
    resolved = {}
    for experiment_id, variants in experiments.items():
        plan = plans.get(experiment_id, ExperimentPlan(experiment_id))
        control = plan.control or ("control" if "control" in variants else variants[0])
        if control not in variants:
            raise DataQualityError(f"{source}: control {control!r} of {experiment_id} is not among its variants "
                                   f"{variants}; set the control in the plan (or --control {experiment_id}=VARIANT)")
        if plan.allocation is not None and set(plan.allocation) != set(variants):
            raise DataQualityError(f"{source}: the planned allocation of {experiment_id} names variants "
                                   f"{sorted(plan.allocation)}, but the file has {variants}; give every variant "
                                   "its planned share")
        resolved[experiment_id] = replace(plan, control=control)
    return resolved


def load_experiments(warehouse: Warehouse, frame: pd.DataFrame, source: str,
                     plans: dict[str, ExperimentPlan] | None = None, run_id: str | None = None) -> ExperimentLoad:
    """Validate ``frame`` and publish its experiments in one transaction (see the module docstring).

    ``plans`` holds what was fixed before each experiment ran (control, planned allocation,
    baseline rate); it is stored beside the users so the analysis tests the delivered split
    against the planned one. Experiments without a plan get the defaults of :func:`resolve_plans`.
    """
    result = validate_experiments(frame, source)  # raises before any write
    now = utc_now()
    run_id = run_id or new_run_id(now)
    clean = result.clean
    if clean.empty:
        raise DataQualityError(f"{source}: no valid rows to load ({result.rows_read} read, all quarantined)")
    variants = {e: sorted(part["variant"].unique()) for e, part in clean.groupby("experiment_id")}
    resolved = resolve_plans(variants, plans or {}, source)
    catalog = [{"experiment_id": e, "control": plan.control, "description": plan.description, "source": source,
                "updated_at": pd.Timestamp(now),
                "allocation": json.dumps(plan.allocation, sort_keys=True) if plan.allocation else None,
                "baseline_rate": plan.baseline_rate} for e, plan in resolved.items()]
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
    return ExperimentLoad(run_id, source, result.rows_read, len(users), len(quarantine), sorted(variants),
                          [f.as_dict() for f in result.findings])


def generate_all(warehouse: Warehouse, specs: tuple[ExperimentSpec, ...], seed: int, scale: float = 1.0) -> ExperimentLoad:
    """Generate every configured experiment and load them with their plans (replacing earlier copies)."""
    if not specs:
        raise ExperimentConfigError("no experiments configured in ab_experiments")
    frame = pd.concat([generate(spec, seed, scale) for spec in specs], ignore_index=True)
    return load_experiments(warehouse, frame, "generated", {s.experiment_id: s.plan for s in specs})


# -- reading back -------------------------------------------------------------------------------------
def experiment_list(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.query("ab_experiment_list")


def experiment_info(warehouse: Warehouse, experiment_id: str) -> dict[str, Any]:
    """The catalog row of one experiment, its plan parsed (``plan``: an :class:`ExperimentPlan`);
    a clear error naming the stored ones when unknown."""
    listing = experiment_list(warehouse)
    match = listing[listing["experiment_id"] == experiment_id]
    if match.empty:
        known = ", ".join(listing["experiment_id"]) or "none (run make run, or load a file)"
        raise LookupError(f"no experiment {experiment_id!r} in the warehouse; stored: {known}")
    info = match.iloc[0].to_dict()
    allocation = info.get("allocation")
    baseline = info.get("baseline_rate")
    info["plan"] = ExperimentPlan(
        experiment_id, info["control"], json.loads(allocation) if isinstance(allocation, str) else None,
        None if baseline is None or pd.isna(baseline) else float(baseline), str(info.get("description") or ""))
    return info


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
    """Generate the configured experiments and load ``ab_source_file`` (with the plans of
    ``ab_plan_file``) when one is set."""
    loads = []
    specs = parse_specs(settings.ab_experiments)
    if specs:
        loads.append(generate_all(warehouse, specs, settings.ab_seed, settings.ab_scale))
    if settings.ab_source_file:
        source = str(settings.ab_source_file)
        plans = read_plans(settings.ab_plan_file) if settings.ab_plan_file else {}
        loads.append(load_experiments(warehouse, read_source(source, settings.encoding), source, plans))
    return loads


def read_plans(path: str | Path) -> dict[str, ExperimentPlan]:
    """The plans in a YAML plan file (see :func:`helpers.core.experiment_specs.parse_plans`)."""
    path = Path(path)
    if not path.exists():
        raise ExperimentConfigError(f"plan file {path} not found (setting ab_plan_file, or --plan)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ExperimentConfigError(f"plan file {unreadable(path, exc)}") from None
    except UnicodeDecodeError as exc:
        raise ExperimentConfigError(f"plan file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                    "save it as UTF-8") from None
    return parse_plans(text, f"plan file {path}")
