"""A/B experiment data: a seeded generator, checks on a user's file, and the warehouse load.

One row per user: ``experiment_id, user_id, variant, assigned_at, converted, revenue``.

The generator (``ab_experiments`` in ``env.yaml``) draws daily arrivals, assigns each user
to a variant with the configured allocation, converts with the variant's rate and draws
the order value of a converted user from a log-normal with the variant's mean. A user's
own CSV goes through the same row checks as the time series (missing, unparseable, out of
range, unknown category, duplicates), plus a sample-ratio-mismatch test. Generated and
uploaded experiments are loaded by the same function: a loaded experiment replaces the
stored one of the same id in one transaction; bad rows go to ``quarantine`` with their
reasons, so nothing read is lost.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from helpers.provenance import utc_now
from helpers.quality import (
    DataQualityError, Finding, _finding, is_missing, parse_flag, parse_numbers, parse_timestamps, read_source,
)
from helpers.warehouse import TABLE_COLUMNS, Warehouse

COLUMNS = ("experiment_id", "user_id", "variant", "assigned_at", "converted", "revenue")
SRM_ALPHA = 0.001  # p-value below which a sample-ratio mismatch is flagged
MAX_IDENTIFIER = 64


class ExperimentConfigError(ValueError):
    """An experiment definition in the settings is not valid; the message says what is allowed."""


@dataclass(frozen=True)
class Variant:
    name: str
    rate: float          # true conversion rate
    order_value: float   # true mean revenue of a converted user
    share: float         # planned share of users


@dataclass(frozen=True)
class ExperimentSpec:
    """One generated experiment."""

    experiment_id: str
    description: str
    control: str
    variants: tuple[Variant, ...]
    start: pd.Timestamp
    days: int
    users_per_day: float
    order_sigma: float = 0.8  # log-normal shape of order values

    @property
    def true_lifts(self) -> dict[str, float]:
        """Absolute conversion-rate difference of each variant against the control."""
        base = {v.name: v.rate for v in self.variants}[self.control]
        return {v.name: v.rate - base for v in self.variants if v.name != self.control}


def _number(where: str, value: Any, low: float, high: float | None = None) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ExperimentConfigError(f"{where} must be a number, got {value!r}") from None
    if not np.isfinite(number) or number < low or (high is not None and number > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ExperimentConfigError(f"{where} must be {bound}, got {value!r}")
    return number


def _identifier(where: str, value: Any) -> str:
    text = str(value).strip()
    if not text or len(text) > MAX_IDENTIFIER or not all(c.isalnum() or c in "_-" for c in text):
        raise ExperimentConfigError(f"{where} must be 1-{MAX_IDENTIFIER} letters, digits, '_' or '-', got {value!r}")
    return text


def parse_specs(raw: Any) -> tuple[ExperimentSpec, ...]:
    """Typed experiment definitions from the ``ab_experiments`` setting (a mapping or YAML text)."""
    import yaml

    if isinstance(raw, str):
        try:
            raw = yaml.safe_load(raw) if raw.strip() else {}
        except yaml.YAMLError as exc:
            raise ExperimentConfigError(f"ab_experiments is not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ExperimentConfigError("ab_experiments must map experiment ids to definitions")
    specs = []
    for experiment_id, body in raw.items():
        experiment_id = _identifier("experiment id", experiment_id)
        where = f"ab_experiments.{experiment_id}"
        if not isinstance(body, dict) or not isinstance(body.get("variants"), dict):
            raise ExperimentConfigError(f"{where} needs a 'variants' mapping of name: {{rate, order_value}}")
        names = [_identifier(f"{where} variant", n) for n in body["variants"]]
        if len(names) < 2:
            raise ExperimentConfigError(f"{where} needs at least two variants, got {names}")
        shares = body.get("allocation") or [1 / len(names)] * len(names)
        if len(shares) != len(names):
            raise ExperimentConfigError(f"{where}.allocation needs one share per variant ({len(names)})")
        shares = [_number(f"{where}.allocation", s, 0.0, 1.0) for s in shares]
        if abs(sum(shares) - 1) > 1e-6:
            raise ExperimentConfigError(f"{where}.allocation must sum to 1, got {sum(shares)}")
        variants = []
        for name, share, (_, v) in zip(names, shares, body["variants"].items()):
            if not isinstance(v, dict):
                raise ExperimentConfigError(f"{where}.variants.{name} needs rate and order_value")
            variants.append(Variant(name, _number(f"{where}.variants.{name}.rate", v.get("rate"), 0.0, 1.0),
                                    _number(f"{where}.variants.{name}.order_value", v.get("order_value", 0), 0.0),
                                    share))
        control = str(body.get("control", names[0]))
        if control not in names:
            raise ExperimentConfigError(f"{where}.control {control!r} is not one of its variants {names}")
        try:
            start = pd.Timestamp(str(body.get("start", "2026-01-05")))
        except ValueError:
            raise ExperimentConfigError(f"{where}.start must be a date, got {body.get('start')!r}") from None
        specs.append(ExperimentSpec(
            experiment_id, str(body.get("description", "")), control, tuple(variants), start,
            int(_number(f"{where}.days", body.get("days", 14), 1, 365)),
            _number(f"{where}.users_per_day", body.get("users_per_day", 1000), 1.0),
            _number(f"{where}.order_sigma", body.get("order_sigma", 0.8), 0.0, 5.0),
        ))
    return tuple(specs)


def generate(spec: ExperimentSpec, seed: int, scale: float = 1.0) -> pd.DataFrame:
    """Simulated users of one experiment; the same seed gives the same rows."""
    rng = np.random.default_rng([seed, sum(spec.experiment_id.encode())])
    arrivals = rng.poisson(spec.users_per_day * scale, spec.days)
    n = int(arrivals.sum())
    day = np.repeat(np.arange(spec.days), arrivals)
    seconds = rng.uniform(0, 86_400, n)
    assigned_at = spec.start + pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds.round(), unit="s")
    shares = np.array([v.share for v in spec.variants])
    which = rng.choice(len(spec.variants), size=n, p=shares / shares.sum())
    rates = np.array([v.rate for v in spec.variants])[which]
    converted = rng.random(n) < rates
    means = np.array([v.order_value for v in spec.variants])[which]
    sigma = spec.order_sigma
    mu = np.log(np.where(means > 0, means, 1.0)) - sigma ** 2 / 2
    revenue = np.where(converted & (means > 0), np.round(rng.lognormal(mu, sigma), 2), 0.0)
    order = np.argsort(assigned_at.to_numpy(), kind="stable")
    return pd.DataFrame({
        "experiment_id": spec.experiment_id,
        "user_id": [f"{spec.experiment_id}-{i:07d}" for i in range(n)],
        "variant": np.array([v.name for v in spec.variants])[which][order],
        "assigned_at": assigned_at.to_numpy()[order],
        "converted": converted.astype(int)[order],
        "revenue": revenue[order],
    })


# -- checks on a file --------------------------------------------------------------------------------
@dataclass
class ExperimentValidation:
    source: str
    rows_read: int
    clean: pd.DataFrame
    quarantine: pd.DataFrame  # row_number, experiment_id, reasons, record
    findings: list[Finding] = field(default_factory=list)


def validate_experiments(frame: pd.DataFrame, source: str = "<data>") -> ExperimentValidation:
    """Row checks on an experiment table; raise :class:`DataQualityError` when a column is missing.

    Row problems (the row is quarantined with every reason): ``missing_value``,
    ``unparseable`` (time, revenue), ``unknown_category`` (converted not 0/1; an id with
    characters outside letters, digits, '_' and '-'), ``out_of_range`` (negative revenue, or
    revenue without a conversion), ``duplicate_user`` (a user seen twice in an experiment:
    an exact copy keeps the first row; different rows, e.g. two variants, quarantine them all).
    """
    found = [str(c) for c in frame.columns]
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataQualityError(f"{source}: missing required columns {missing}; required: {list(COLUMNS)}; "
                               f"columns found: {found}")
    frame = frame.reset_index(drop=True)
    text = {c: frame[c].astype("string").str.strip() for c in ("experiment_id", "user_id", "variant")}
    parsed = pd.DataFrame({
        **text,
        "assigned_at": parse_timestamps(frame["assigned_at"]),
        "converted": parse_flag(frame["converted"]),
        "revenue": parse_numbers(frame["revenue"]),
    })
    findings: list[Finding] = []

    def add(kind: str, column: str, mask: Any, message: str) -> None:
        hit = _finding(kind, column, np.asarray(mask, dtype=bool), frame[column], message)
        if hit:
            findings.append(hit)

    absent = {c: is_missing(frame[c]) for c in COLUMNS}
    for column in COLUMNS:
        add("missing_value", column, absent[column], f"{column!r} is empty or NA")
    add("unparseable", "assigned_at", ~absent["assigned_at"] & parsed["assigned_at"].isna().to_numpy(),
        "'assigned_at' is not an ISO 8601 timestamp")
    add("unparseable", "revenue", ~absent["revenue"] & parsed["revenue"].isna().to_numpy(),
        "'revenue' is not a number")
    add("unknown_category", "converted", ~absent["converted"] & parsed["converted"].isna().to_numpy(),
        "'converted' must be 0 or 1")
    for column in ("experiment_id", "variant"):
        ok = text[column].fillna("").map(lambda s: 0 < len(s) <= MAX_IDENTIFIER and all(
            ch.isalnum() or ch in "_-" for ch in s))
        add("unknown_category", column, ~absent[column] & ~ok.to_numpy(dtype=bool),
            f"{column!r} must be 1-{MAX_IDENTIFIER} letters, digits, '_' or '-'")
    revenue, converted = parsed["revenue"], parsed["converted"]
    add("out_of_range", "revenue", (revenue < 0).fillna(False), "'revenue' is negative")
    add("out_of_range", "revenue", ((revenue > 0) & (converted == 0)).fillna(False),
        "'revenue' is positive for a user who did not convert")

    reasons: dict[int, list[str]] = {}
    for finding in findings:
        for row in finding.rows:
            reasons.setdefault(row, []).append(f"{finding.kind}:{finding.column}")
    eligible = np.ones(len(frame), dtype=bool)
    eligible[list(reasons)] = False
    keyed = parsed[eligible]
    key = ["experiment_id", "user_id"]
    repeated = keyed[keyed.duplicated(key, keep=False)]
    if not repeated.empty:
        conflicting = repeated.groupby(key).filter(lambda g: len(g.drop_duplicates()) > 1).index
        copies = repeated[~repeated.index.isin(conflicting)]
        dupes = np.zeros(len(frame), dtype=bool)
        dupes[list(conflicting)] = True
        dupes[copies[copies.duplicated(key)].index] = True
        hit = _finding("duplicate_user", "user_id", dupes, frame["user_id"],
                       "a user appears more than once in an experiment (conflicting rows are all quarantined)")
        if hit:
            findings.append(hit)
            for row in hit.rows:
                reasons.setdefault(row, []).append("duplicate_user:user_id")

    bad = np.zeros(len(frame), dtype=bool)
    bad[list(reasons)] = True
    clean = parsed[~bad].assign(converted=lambda d: d["converted"].astype(int)).reset_index(drop=True)
    rows = sorted(reasons)
    quarantine = pd.DataFrame({
        "row_number": [r + 1 for r in rows],
        "experiment_id": [str(frame.at[r, "experiment_id"]) for r in rows],
        "reasons": ["; ".join(reasons[r]) for r in rows],
        "record": [json.dumps({str(k): (None if pd.isna(v) else str(v)) for k, v in frame.iloc[r].items()})
                   for r in rows],
    })
    if len(clean) + len(quarantine) != len(frame):  # the accounting invariant
        raise AssertionError(f"{source}: {len(frame)} rows read != {len(clean)} clean + {len(quarantine)} quarantined")
    return ExperimentValidation(source, len(frame), clean, quarantine, findings)


def sample_ratio_mismatch(users: pd.Series, shares: pd.Series | None = None) -> dict[str, Any]:
    """Chi-square goodness of fit of the users per variant against the planned shares
    (equal by default). ``mismatch`` is True when p < 0.001."""
    users = users.astype(float)
    shares = pd.Series(1.0, index=users.index) if shares is None else shares.reindex(users.index).astype(float)
    expected = users.sum() * shares / shares.sum()
    if len(users) < 2 or users.sum() == 0:
        return {"chi2": float("nan"), "p_value": float("nan"), "mismatch": False,
                "message": "sample ratio not tested: fewer than two variants with users"}
    chi2, p = stats.chisquare(users.to_numpy(), expected.to_numpy())
    mismatch = bool(p < SRM_ALPHA)
    observed = ", ".join(f"{v} {int(n):,}" for v, n in users.items())
    message = (f"SAMPLE RATIO MISMATCH (chi-square {chi2:.1f}, p = {p:.2g} < {SRM_ALPHA}): users per variant "
               f"({observed}) do not match the planned split. The assignment or the logging is broken; do not "
               f"trust any result of this experiment until that is explained."
               if mismatch else f"No sample ratio mismatch (chi-square {chi2:.2f}, p = {p:.3g}): {observed}.")
    return {"chi2": float(chi2), "p_value": float(p), "mismatch": mismatch, "message": message}


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


# -- command line --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.experiments load FILE [--control EXP=VARIANT ...]`` or ``... generate``.

    Exit codes: 0 loaded, 2 the file or settings were refused (nothing changed), 3 warehouse error.
    """
    from helpers.config import ConfigError, load_settings
    from helpers.warehouse import WarehouseError

    parser = argparse.ArgumentParser(prog="python -m helpers.experiments", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="validate and load a CSV/Parquet of experiment users")
    load.add_argument("file")
    load.add_argument("--control", action="append", default=[], metavar="EXPERIMENT=VARIANT")
    sub.add_parser("generate", help="generate the experiments configured in env.yaml")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        with Warehouse.from_settings(settings) as warehouse:
            if args.command == "generate":
                report = generate_all(warehouse, parse_specs(settings.ab_experiments), settings.ab_seed,
                                      settings.ab_scale)
            else:
                controls = dict(item.split("=", 1) for item in args.control if "=" in item)
                report = load_experiments(warehouse, read_source(args.file), args.file, controls)
    except (DataQualityError, ExperimentConfigError, ConfigError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    except WarehouseError as exc:
        print(f"warehouse error: {exc}", file=sys.stderr)
        return 3
    print(report.summary())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


def pipeline_experiment_ids() -> list[str]:
    """The experiments the pipeline analyses (its ``grid``): the configured ones, then those
    in ``ab_source_file``. Reads the settings as ``load_settings`` does (env.yaml, the
    ``HELPERS_PROFILE`` overlay, ``HELPERS_*`` variables)."""
    from helpers.config import load_settings

    settings = load_settings()
    ids = [spec.experiment_id for spec in parse_specs(settings.ab_experiments)]
    if settings.ab_source_file:
        frame = read_source(settings.ab_source_file)
        if "experiment_id" in frame:
            valid = validate_experiments(frame, str(settings.ab_source_file)).clean
            ids += [e for e in sorted(valid["experiment_id"].unique()) if e not in ids]
    return ids


def load_task_data(warehouse: Warehouse, settings) -> list[ExperimentLoad]:
    """Generate the configured experiments and load ``ab_source_file`` when one is set."""
    loads = []
    specs = parse_specs(settings.ab_experiments)
    if specs:
        loads.append(generate_all(warehouse, specs, settings.ab_seed, settings.ab_scale))
    if settings.ab_source_file:
        source = str(settings.ab_source_file)
        loads.append(load_experiments(warehouse, read_source(source), source))
    return loads
