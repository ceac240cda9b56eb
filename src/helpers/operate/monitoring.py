"""Monitoring of the production forecast: accuracy and interval coverage against the actual
values as they arrive, drift of the target and its covariates, and the data quality of the
files the operating loop takes in.

Every signal gets a status from the thresholds in ``env.yaml`` (``monitor_*``):

- ``green``: judged, nothing wrong;
- ``orange`` / ``red``: judged, past the orange / red threshold (thresholds count from the value
  on: ``monitor_accuracy_orange: 1.25`` makes a ratio of exactly 1.25 orange);
- ``grey``: not judged, because there is no data yet (no forecast has an actual value, no file
  was taken in, no artifact to compare with) or too little; the message says which.

Alerts fire on orange and red only; grey is shown, never sent. Each window ends at the latest
data of its kind (the last day forecast that has an actual, the last day of data, the last
file taken in), so a replay judges every cycle as it would have been judged then.

Tables for the charts (``error_over_time`` ...) are long: one row per period, model and
version. Functions take and return empty frames with the same columns when there is no data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from helpers.core import formatting
from helpers.core.settings import Settings
from helpers.data.quality import FILE_KINDS, ROW_KINDS
from helpers.data.series import DEGREE_DAY_BASE, daily_total_scale
from helpers.forecast.artifact import load_artifact
from helpers.publish import tables
from helpers.warehouse import Warehouse

if TYPE_CHECKING:  # plotly is imported by the figures, when they are drawn
    import plotly.graph_objects as go

Status = Literal["green", "orange", "red", "grey"]
STATUSES: tuple[str, ...] = ("green", "orange", "red", "grey")
#: Statuses that raise an alert.
ALERTING: tuple[str, ...] = ("orange", "red")
COLOURS = {"green": "#2e7d32", "orange": "#ef6c00", "red": "#c62828", "grey": "#9e9e9e"}
_BACKGROUNDS = {"green": "#c8e6c9", "orange": "#ffe0b2", "red": "#ffcdd2", "grey": "#eeeeee"}
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
LEVELS = (80, 95)
#: Daily columns watched for drift: the target and the covariates the models may use. The work-day
#: flag is left out: it follows the calendar, so its distribution changes with the days in a window.
DRIFT_COLUMNS = ("y_mean", "temperature_mean")
TARGET_COLUMN = "y_mean"
ERROR_COLUMNS = ("n", "mae", "rmse", "mape", "bias")
FORECAST_COLUMNS = ("target_date", "model", "model_version", "horizon_step", "forecast", "actual")
INTAKE_COLUMNS = ("processed_at", "file_name", "outcome", "rows_read", "rows_loaded", "rows_quarantined",
                  "invalid_share", "criticality", "errors")
CRITICALITIES = ("low", "medium", "high")
OUTCOMES = ("good", "mixed", "bad")
#: Values a comparison treats as equal to a threshold (coverage 17/20 is 0.85, and 0.95 - 0.85 < 0.10).
_TOLERANCE = 1e-9
#: Smallest bin share in the PSI, so that an empty bin gives a large but finite term (a common choice).
PSI_FLOOR = 1e-4
DAYS_PER_YEAR = 365.25


# -- thresholds, signals, the model's reference -------------------------------------------------------------
@dataclass(frozen=True)
class Thresholds:
    """The ``monitor_*`` settings (``env.yaml``, section "the operating loop")."""

    window_days: int = 28
    accuracy_orange: float = 1.25
    accuracy_red: float = 1.75
    coverage_orange: float = 0.10
    coverage_red: float = 0.20
    psi_orange: float = 0.10
    psi_red: float = 0.25
    ks_alpha: float = 0.01
    invalid_orange: float = 0.01
    invalid_red: float = 0.05

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(**{name: getattr(settings, f"monitor_{name}") for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Signal:
    """One monitored quantity and its status.

    ``key`` names it for the alerts (``accuracy:<model>``, ``coverage_95:<model>``,
    ``drift:<column>``, ``data_quality:invalid_share``); ``value`` is the number judged (a ratio, a
    share, a PSI; None when not judged); ``threshold`` says in words what makes it orange and red;
    ``message`` is a sentence for the person on call: what is wrong and where to look.
    """

    key: str
    status: Status
    value: float | None
    threshold: str
    message: str

    @property
    def alerting(self) -> bool:
        return self.status in ALERTING


@dataclass(frozen=True)
class ModelReference:
    """What the forecasts are judged against, from the forecast artifact.

    ``cv_mae``: each model's cross-validated MAE; ``cv_horizon``: the days ahead the
    cross-validation forecast (accuracy compares only forecasts up to it); ``training_end``: the
    last day the model was fitted on (the end of the drift reference); ``note``: why there is
    no reference, or ``""``.
    """

    cv_mae: dict[str, float] = field(default_factory=dict)
    cv_horizon: int | None = None
    training_end: pd.Timestamp | None = None
    selected_model: str | None = None
    source: str = ""
    note: str = ""

    @classmethod
    def from_payload(cls, payload: dict[str, Any], source: str = "the artifact") -> ModelReference:
        horizon = payload.get("parameters", {}).get("comparison", {}).get("horizon")
        return cls(cv_mae={name: float(model["cv"]["mae"]) for name, model in payload["models"].items()},
                   cv_horizon=int(horizon) if horizon else None,
                   training_end=pd.Timestamp(payload["training_end"]), selected_model=payload["selected_model"],
                   source=source)


def default_artifact(settings: Settings) -> Path:
    """Where the pipeline writes the forecast artifact: ``<products>/model/forecast_artifact.json``."""
    return settings.products / "model" / "forecast_artifact.json"


def load_reference(path: str | Path) -> ModelReference:
    """The artifact's cross-validated metrics and training end.

    An artifact not written yet gives an empty reference whose ``note`` says so (accuracy is then
    not judged); a corrupt or incompatible one raises :class:`helpers.forecast.artifact.ArtifactError`.
    """
    path = Path(path)
    if not path.exists():
        return ModelReference(note=f"There is no forecast artifact at {path} yet, so the cross-validated error to "
                                   "judge accuracy against is unknown (`make run` builds it).")
    return ModelReference.from_payload(load_artifact(path), source=str(path))


# -- reading the warehouse ----------------------------------------------------------------------------------
def forecasts_with_actuals(warehouse: Warehouse, series_id: str) -> pd.DataFrame:
    """The forecast log of ``series_id`` with the actual value of each day forecast.

    Returns the ``forecast_log`` columns, ``y_mean`` (the day's mean from ``daily_series``) and
    ``actual``, the value on the forecast's own scale: the models forecast the daily total of
    :func:`helpers.data.series.load_series` (``y_mean`` times the steps in a day, 48 for
    half-hourly data). ``actual`` is missing while the day has not been taken in. A forecast
    logged more than once (a cycle's and the endpoint's) appears once (``sql/select_forecasts_with_actuals.sql``).
    """
    frame = warehouse.query("select_forecasts_with_actuals", [series_id])
    scale = daily_total_scale(warehouse, series_id) if len(frame) else 1.0
    frame["actual"] = frame["y_mean"].astype(float) * scale
    return frame


def intake_files(warehouse: Warehouse, series_id: str) -> pd.DataFrame:
    """The rows of ``intake_files`` for ``series_id``, oldest first."""
    return warehouse.query("select_intake_files", [series_id])


def _require(frame: pd.DataFrame, columns: Iterable[str], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks the columns {missing}; pass the frame {source}() returns")


def latest_window(frame: pd.DataFrame, time_col: str, window_days: int) -> pd.DataFrame:
    """The rows of the ``window_days`` days that end at the latest ``time_col`` (that day included)."""
    if frame.empty:
        return frame
    end = frame[time_col].max()
    return frame[frame[time_col] > end - pd.Timedelta(days=window_days)]


# -- accuracy and coverage ----------------------------------------------------------------------------------
def _scored(frame: pd.DataFrame) -> pd.DataFrame:
    """Forecasts whose actual is known, with ``error = actual - forecast``."""
    _require(frame, FORECAST_COLUMNS, "forecasts_with_actuals")
    scored = frame[frame["actual"].notna()].copy()
    scored["error"] = scored["actual"] - scored["forecast"]
    return scored


def _errors(scored: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if scored.empty:
        return pd.DataFrame(columns=[*keys, *ERROR_COLUMNS])
    actual = scored["actual"].abs()
    parts = scored.assign(abs_error=scored["error"].abs(), sq_error=scored["error"] ** 2,
                          ape=(scored["error"].abs() / actual).where(actual > 0))
    out = parts.groupby(keys, sort=True).agg(n=("error", "size"), mae=("abs_error", "mean"),
                                             rmse=("sq_error", "mean"), mape=("ape", "mean"), bias=("error", "mean"))
    out["rmse"] = np.sqrt(out["rmse"])
    out["mape"] *= 100
    return out.reset_index()


def _period(times: pd.Series, freq: str) -> pd.Series:
    """The start of each time's period (``W``: the Monday)."""
    return pd.to_datetime(times).dt.to_period(freq).dt.start_time


def error_over_time(frame: pd.DataFrame, freq: str = "W") -> pd.DataFrame:
    """MAE, RMSE, MAPE (%) and bias of each model version per period of the day forecast.

    ``freq`` is a pandas period alias (``W``: weeks starting Monday, ``D``, ``M``). Errors are
    ``actual - forecast`` (as in the model comparison): a positive bias is a model that forecasts
    too low. MAPE leaves out days whose actual is 0. Forecasts without an actual are left out.

    Returns ``period, model, model_version, n, mae, rmse, mape, bias``.
    """
    scored = _scored(frame)
    return _errors(scored.assign(period=_period(scored["target_date"], freq)), ["period", "model", "model_version"])


def error_by_horizon(frame: pd.DataFrame) -> pd.DataFrame:
    """MAE, RMSE, MAPE (%) and bias of each model per horizon step (days after the fit).

    Returns ``model, horizon_step, n, mae, rmse, mape, bias``.
    """
    return _errors(_scored(frame), ["model", "horizon_step"])


def coverage_over_time(frame: pd.DataFrame, freq: str = "W") -> pd.DataFrame:
    """Share of actual values inside the 80% and 95% intervals, per period, model and version.

    A value on a bound counts as inside. Forecasts logged without bounds are left out of ``n``.
    Returns ``period, model, model_version, level, nominal, n, covered, coverage``.
    """
    scored = _scored(frame)
    _require(scored, [f"{side}_{level}" for level in LEVELS for side in ("lower", "upper")],
             "forecasts_with_actuals")
    keys = ["period", "model", "model_version"]
    parts = []
    for level in LEVELS:
        lower, upper = scored[f"lower_{level}"], scored[f"upper_{level}"]
        known = scored[lower.notna() & upper.notna()]
        if known.empty:
            continue
        inside = (known["actual"] >= known[f"lower_{level}"]) & (known["actual"] <= known[f"upper_{level}"])
        grouped = known.assign(period=_period(known["target_date"], freq), inside=inside).groupby(keys)
        part = grouped.agg(n=("inside", "size"), covered=("inside", "sum")).reset_index()
        parts.append(part.assign(level=level, nominal=level / 100))
    columns = [*keys, "level", "nominal", "n", "covered", "coverage"]
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)
    out["coverage"] = out["covered"] / out["n"]
    return out.sort_values([*keys, "level"], ignore_index=True)[columns]


# -- drift ---------------------------------------------------------------------------------------------------
def population_stability_index(expected: Sequence[float], actual: Sequence[float], bins: int = 10) -> float:
    """PSI of ``actual`` against ``expected``: ``sum((a - e) * ln(a / e))`` over bins.

    The bins are the ``bins`` quantile bins of ``expected`` (equal shares there, the outer ones
    open-ended); ``a`` and ``e`` are each sample's share in a bin, floored at :data:`PSI_FLOOR`.
    Rules of thumb (Siddiqi, *Credit Risk Scorecards*, 2006): below 0.1 stable, 0.1-0.25 a
    moderate shift, above 0.25 a major one. The statistic is noisy on small samples: with no
    drift at all its expected value is about ``(bins - 1) * (1/n_expected + 1/n_actual)``.
    """
    expected, actual = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if len(expected) == 0 or len(actual) == 0:
        raise ValueError("the population stability index needs values in both samples")
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / len(actual)
    e, a = np.maximum(e, PSI_FLOOR), np.maximum(a, PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class DriftResult:
    """What :func:`drift` found.

    ``table``: one row per variable judged or not (see :func:`drift` for the columns);
    ``values``: ``variable, ts, value, profile, residual, part`` (``reference`` or ``window``) for
    the charts; ``notes``: variables left out and choices made, in sentences.
    """

    table: pd.DataFrame
    values: pd.DataFrame
    notes: tuple[str, ...] = ()
    window_days: int = 28


DRIFT_TABLE_COLUMNS = ("variable", "judged", "reason", "profile", "reference_start", "reference_end",
                       "window_start", "window_end", "n_reference", "n_window", "autocorrelation", "ks_statistic",
                       "ks_pvalue", "psi", "psi_bins", "psi_by_chance", "shift_sd")
DRIFT_VALUE_COLUMNS = ("variable", "ts", "value", "profile", "residual", "part")


def _season_covered(reference: pd.Series, window: pd.Series, margin_days: int) -> bool:
    """True when the reference spans a year, or holds, for every day of the window, a day no more than
    ``margin_days`` before it and one no more than ``margin_days`` after it in the year (round the
    year's end): the yearly profile is then interpolated there, not extrapolated."""
    if reference.max() - reference.min() >= pd.Timedelta(days=365):
        return True
    ref = np.unique(reference.dt.dayofyear.to_numpy())[None, :]
    win = np.unique(window.dt.dayofyear.to_numpy())[:, None]
    after, before = (ref - win) % DAYS_PER_YEAR, (win - ref) % DAYS_PER_YEAR
    return bool(((after <= margin_days).any(axis=1) & (before <= margin_days).any(axis=1)).all())


def _design(part: pd.DataFrame, harmonics: int) -> np.ndarray:
    """Intercept, yearly Fourier terms (``harmonics`` sine/cosine pairs), weekday dummies, and the
    ``workday``, ``heating`` and ``cooling`` columns of ``part`` when it has them."""
    days = (part["ts"] - pd.Timestamp("1970-01-01")).dt.days.to_numpy(dtype=float)
    columns = [np.ones(len(part))]
    for k in range(1, harmonics + 1):
        angle = 2 * np.pi * k * days / DAYS_PER_YEAR
        columns += [np.sin(angle), np.cos(angle)]
    weekday = part["ts"].dt.dayofweek.to_numpy()
    columns += [(weekday == d).astype(float) for d in range(1, 7)]
    columns += [part[c].to_numpy(dtype=float) for c in ("workday", "heating", "cooling") if c in part]
    return np.column_stack(columns)


def _ks_pvalue(statistic: float, n: float, m: float) -> float:
    """Kolmogorov's asymptotic p-value of a two-sample KS statistic for (effective) sizes n and m."""
    return float(stats.kstwobign.sf(statistic * math.sqrt(n * m / (n + m))))


def _compare(reference: pd.Series, window: pd.Series) -> dict[str, float]:
    """KS and PSI of the window's residuals against the reference's (both indexed by day)."""
    r = pd.Series(reference.to_numpy(), index=reference.index).asfreq("D").autocorr(1)
    # Sample sizes shrunk for AR(1)-like dependence, r clipped to [0, 0.9]: a negative r would inflate them.
    r = float(np.clip(r if np.isfinite(r) else 0.0, 0.0, 0.9))
    shrink = (1 - r) / (1 + r)
    n_ref, n_win = len(reference) * shrink, len(window) * shrink
    ks = float(stats.ks_2samp(reference, window, method="asymp").statistic)
    # At least five window values expected per bin, at most ten bins.
    bins = int(min(10, max(2, len(window) // 5)))
    sd = float(np.std(reference, ddof=1))
    return {"autocorrelation": r, "ks_statistic": ks, "ks_pvalue": _ks_pvalue(ks, n_ref, n_win),
            "psi": population_stability_index(reference, window, bins), "psi_bins": bins,
            "psi_by_chance": (bins - 1) * (1 / n_ref + 1 / n_win),
            "shift_sd": float(np.mean(window) / sd) if sd > 0 else 0.0}


def drift(daily: pd.DataFrame, reference_end: pd.Timestamp | str | None = None, window_days: int = 28,
          columns: Sequence[str] = DRIFT_COLUMNS, *, target: str = TARGET_COLUMN,
          temperature_col: str = "temperature_mean", time_col: str = "ts", workday_col: str = "workday",
          harmonics: int = 3, season_margin_days: int = 31, min_window: int = 7,
          min_reference: int = 56) -> DriftResult:
    """Drift of each daily variable between the training data and the latest ``window_days`` days,
    measured on deseasonalised values so that the season is not taken for drift.

    Method. For each variable, a seasonal profile is fitted by least squares on the reference
    alone: a yearly cycle (``harmonics`` Fourier pairs of period 365.25 days), one level per
    weekday and, when the frame has it, the work-day flag (holidays); for the ``target``, also
    heating and cooling degree-days of ``temperature_col`` (base 18 deg C), so that the target's
    drift means demand unlike what the season, the calendar and the weather imply, while the
    weather's own drift is the temperature's. The profile is subtracted from the reference and
    from the window, and the two sets of residuals are compared with a two-sample
    Kolmogorov-Smirnov test and the population stability index (:func:`population_stability_index`,
    bins from the reference's quantiles). Winter demand in the window is then compared with what
    the profile expects of winter, not with the whole year: a cold month is not drift, a level
    shift is. This was chosen over comparing with the same calendar weeks of the reference
    because one year of history holds only those four weeks, too few for either statistic; the
    profile is fitted on the whole reference.

    Reference: the rows up to ``reference_end`` (the model's ``training_end``; None = all data)
    that lie before the window. The yearly terms are only trusted where they interpolate: a
    variable whose reference neither spans a year nor holds, for each window day, days of the year
    within ``season_margin_days`` before and after it, is not judged (``judged = False``,
    ``reason`` says so), since a change of season could not be told from drift.

    Daily residuals are autocorrelated (weather lasts several days), which makes the KS test
    reject far too often; its p-value uses effective sample sizes ``n (1 - r) / (1 + r)``, with
    ``r`` the lag-1 autocorrelation of the reference residuals (Bayley & Hammersley, 1946).

    Args:
        daily: one row per day, ``time_col`` plus the ``columns`` present (``daily_series`` rows).
        reference_end: last day of the reference (the artifact's ``training_end``).
        window_days: length of the latest window (days), ending on the frame's last day.
        columns: variables to watch; absent or all-missing ones are skipped with a note.

    Returns:
        :class:`DriftResult`; its ``table`` has ``variable, judged, reason, profile,
        reference_start, reference_end, window_start, window_end, n_reference, n_window,
        autocorrelation, ks_statistic, ks_pvalue, psi, psi_bins``, ``psi_by_chance`` (the PSI
        expected with no drift at all, for these sample sizes) and ``shift_sd`` (the window's mean
        residual in reference standard deviations; positive = higher than usual).
    """
    notes = [f"`{c}`: the series has no such values, so its drift is not monitored." for c in columns
             if c not in daily.columns or not daily[c].notna().any()]
    present = [c for c in columns if c in daily.columns and daily[c].notna().any()]
    if daily.empty:
        notes.append("There is no daily data yet, so drift is not judged.")
    if daily.empty or not present:
        return DriftResult(pd.DataFrame(columns=DRIFT_TABLE_COLUMNS), pd.DataFrame(columns=DRIFT_VALUE_COLUMNS),
                           tuple(notes), window_days)
    frame = pd.DataFrame({"ts": pd.to_datetime(daily[time_col])})
    window_end = frame["ts"].max()
    window_start = window_end - pd.Timedelta(days=window_days - 1)
    cut = window_start - pd.Timedelta(days=1)
    if reference_end is not None and pd.Timestamp(reference_end) < cut:
        cut = pd.Timestamp(reference_end)
    elif reference_end is not None and pd.Timestamp(reference_end) >= window_start:
        notes.append(f"The model was trained on data up to {pd.Timestamp(reference_end):%Y-%m-%d}, inside the "
                     f"latest window: the reference stops the day before the window starts ({cut:%Y-%m-%d}).")
    if workday_col in daily.columns and daily[workday_col].notna().all() and daily[workday_col].nunique() > 1:
        frame["workday"] = daily[workday_col].astype(float)
    rows, values = [], []
    for column in present:
        part = frame.assign(value=daily[column].astype(float))
        if column == target and temperature_col in daily.columns and daily[temperature_col].notna().any():
            temperature = daily[temperature_col].astype(float)
            part = part.assign(heating=(DEGREE_DAY_BASE - temperature).clip(lower=0),
                               cooling=(temperature - DEGREE_DAY_BASE).clip(lower=0))
        part = part.dropna().sort_values("ts", ignore_index=True)
        in_window, in_reference = (part["ts"] >= window_start).to_numpy(), (part["ts"] <= cut).to_numpy()
        row: dict[str, Any] = {
            "variable": column, "judged": False, "reason": "", "profile": "",
            "reference_start": part["ts"][in_reference].min(), "reference_end": cut,
            "window_start": window_start, "window_end": window_end,
            "n_reference": int(in_reference.sum()), "n_window": int(in_window.sum()),
        }
        if row["n_window"] < min_window or row["n_reference"] < min_reference:
            row["reason"] = (f"too little data: {row['n_window']} values in the window (at least {min_window} needed) "
                             f"and {row['n_reference']} in the reference (at least {min_reference})")
            rows.append(row)
            continue
        yearly = _season_covered(part["ts"][in_reference], part["ts"][in_window], season_margin_days)
        design = _design(part, harmonics if yearly else 0)
        coef, *_ = np.linalg.lstsq(design[in_reference], part["value"].to_numpy()[in_reference], rcond=None)
        profile = design @ coef
        residual = pd.Series(part["value"].to_numpy() - profile, index=part["ts"])
        row.update(_compare(residual[in_reference], residual[in_window]))
        row.update({
            "judged": yearly,
            "reason": "" if yearly else (f"the reference ({row['n_reference']} days) has not seen this time of "
                                         "year on both sides, so a change of season cannot be told from drift; it "
                                         "is judged once the history covers the year"),
            "profile": ", ".join([f"yearly ({harmonics} harmonics)"] * yearly + ["weekday"]
                                 + ["work day"] * ("workday" in part) + ["degree-days"] * ("heating" in part)),
        })
        rows.append(row)
        keep = in_reference | in_window
        values.append(pd.DataFrame({
            "variable": column, "ts": part["ts"][keep], "value": part["value"][keep], "profile": profile[keep],
            "residual": residual.to_numpy()[keep], "part": np.where(in_window[keep], "window", "reference")}))
    table = pd.DataFrame(rows, columns=list(DRIFT_TABLE_COLUMNS))
    value_frame = pd.concat(values, ignore_index=True) if values else pd.DataFrame(columns=DRIFT_VALUE_COLUMNS)
    return DriftResult(table, value_frame, tuple(notes), window_days)


def drift_summary(result: DriftResult) -> pd.DataFrame:
    """:func:`drift`'s table for a report: one row per variable, the periods compared as text,
    numbers to 3 significant digits (the reasons a variable is not judged are in its signal)."""
    table = result.table
    if table.empty:
        return pd.DataFrame(columns=["variable", "judged", "reference", "window", "profile"])

    def span(start: Any, end: Any, n: int) -> str:
        return f"{start:%Y-%m-%d} to {end:%Y-%m-%d} ({n} days)" if pd.notna(start) else f"none ({n} days)"

    out = pd.DataFrame({
        "variable": table["variable"], "judged": table["judged"],
        "reference": [span(*r) for r in zip(table["reference_start"], table["reference_end"], table["n_reference"])],
        "window": [span(*r) for r in zip(table["window_start"], table["window_end"], table["n_window"])],
        "KS statistic": table["ks_statistic"], "KS p-value": table["ks_pvalue"], "PSI": table["psi"],
        "PSI by chance": table["psi_by_chance"], "shift (sd)": table["shift_sd"],
        "autocorrelation": table["autocorrelation"], "profile": table["profile"]})
    numbers = ["KS statistic", "KS p-value", "PSI", "PSI by chance", "shift (sd)", "autocorrelation"]
    out[numbers] = out[numbers].astype(float).apply(lambda c: c.map(lambda v: float(f"{v:.3g}")))
    return out


# -- data quality -------------------------------------------------------------------------------------------
def _error_counts(errors: pd.Series) -> pd.DataFrame:
    """The ``errors`` JSON of each file as one column per kind (known kinds first)."""
    parsed = [json.loads(text) if isinstance(text, str) and text else {} for text in errors]
    kinds = {kind for counts in parsed for kind in counts}
    ordered = [k for k in (*ROW_KINDS, *FILE_KINDS) if k in kinds] + sorted(kinds - {*ROW_KINDS, *FILE_KINDS})
    return pd.DataFrame([{f"errors_{k}": int(counts.get(k, 0)) for k in ordered} for counts in parsed],
                        index=errors.index, columns=[f"errors_{k}" for k in ordered])


def _invalid_rows(files: pd.DataFrame) -> pd.Series:
    """Invalid rows of each file: ``invalid_share * rows_read`` (the quarantined rows, or every row of
    a file refused whole)."""
    return files["invalid_share"].astype(float) * files["rows_read"].astype(float)


def data_quality_over_time(intake: pd.DataFrame, freq: str = "W") -> pd.DataFrame:
    """Per period of ``processed_at``: files by outcome and criticality, rows, invalid share, errors by kind.

    ``invalid_share`` is the share of the period's rows that were invalid (rows of files refused
    whole count as invalid); when no row was read (unreadable files) it is the files' mean share.
    Returns ``period, files, outcome_good, outcome_mixed, outcome_bad, criticality_low,
    criticality_medium, criticality_high, rows_read, rows_loaded, rows_quarantined, invalid_rows,
    invalid_share`` and one ``errors_<kind>`` column per kind of error seen.
    """
    _require(intake, INTAKE_COLUMNS, "intake_files")
    base = ["period", "files", *(f"outcome_{o}" for o in OUTCOMES), *(f"criticality_{c}" for c in CRITICALITIES),
            "rows_read", "rows_loaded", "rows_quarantined", "invalid_rows", "invalid_share"]
    if intake.empty:
        return pd.DataFrame(columns=base)
    files = intake.assign(period=_period(intake["processed_at"], freq), invalid_rows=_invalid_rows(intake),
                          files=1, share=intake["invalid_share"].astype(float))
    for name, values in (("outcome", OUTCOMES), ("criticality", CRITICALITIES)):
        for value in values:
            files[f"{name}_{value}"] = (files[name] == value).astype(int)
    errors = _error_counts(files["errors"])
    files = files.join(errors)
    sums = [c for c in base if c not in ("period", "invalid_share")] + list(errors.columns)
    grouped = files.groupby("period", sort=True)
    out = grouped[sums].sum()
    out["invalid_share"] = (out["invalid_rows"] / out["rows_read"]).where(out["rows_read"] > 0, grouped["share"].mean())
    return out.reset_index()[[*base, *errors.columns]]


# -- statuses -----------------------------------------------------------------------------------------------
def grade(value: float, orange: float, red: float) -> Status:
    """``red`` from ``red`` on, ``orange`` from ``orange`` on, else ``green`` (a value within 1e-9 of a
    threshold counts as reaching it)."""
    if value >= red - _TOLERANCE:
        return "red"
    if value >= orange - _TOLERANCE:
        return "orange"
    return "green"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def accuracy_signals(forecasts: pd.DataFrame, reference: ModelReference, thresholds: Thresholds) -> list[Signal]:
    """``accuracy:<model>``: the window's MAE over the model's cross-validated MAE, per model.

    Only horizons up to the cross-validation's (``reference.cv_horizon``) count, so like is compared with like.
    """
    t, w = thresholds, thresholds.window_days
    text = f"MAE / cross-validated MAE: orange from {t.accuracy_orange:g}, red from {t.accuracy_red:g}"
    window = latest_window(_scored(forecasts), "target_date", w)
    if window.empty:
        return [Signal("accuracy", "grey", None, text, "No logged forecast has an actual value yet, so accuracy "
                       "is not judged; it is once the days forecast have been taken in.")]
    signals = []
    for model, rows in window.groupby("model", sort=True):
        key = f"accuracy:{model}"
        cv = reference.cv_mae.get(model)
        if reference.cv_horizon is not None:
            rows = rows[rows["horizon_step"] <= reference.cv_horizon]
        if cv is None or not cv > 0:
            why = reference.note or f"The artifact {reference.source} has no cross-validated error for {model}."
            signals.append(Signal(key, "grey", None, text, f"{why} Accuracy of {model} is not judged."))
            continue
        if rows.empty:
            signals.append(Signal(key, "grey", None, text, f"No forecast of {model} up to {reference.cv_horizon} "
                                  "days ahead (the cross-validation's horizon) has an actual value yet."))
            continue
        mae = float(rows["error"].abs().mean())
        ratio = mae / cv
        status = grade(ratio, t.accuracy_orange, t.accuracy_red)
        facts = (f"MAE {mae:.3g} against {cv:.3g} in cross-validation, {_plural(len(rows), 'forecast')} of the last "
                 f"{w} days")
        if status == "green":
            message = f"{model}'s error is {ratio:.2f} times its cross-validated error ({facts}): as expected."
        else:
            bias = float(rows["error"].mean())
            direction = "too low" if bias > 0 else "too high"
            message = (f"{model}'s forecasts miss by {ratio:.2f} times their cross-validated error ({facts}); on "
                       f"average they are {direction} by {abs(bias):.3g}. Look at forecast against actual for a level "
                       "shift, a holiday or a bad day of data, at drift for inputs unlike the training data and at "
                       "the data quality of the latest files; refit or re-run the model comparison (make run).")
        signals.append(Signal(key, status, ratio, text, message))
    return signals


def coverage_signals(forecasts: pd.DataFrame, thresholds: Thresholds) -> list[Signal]:
    """``coverage_80:<model>`` and ``coverage_95:<model>``: the window's interval coverage against its level.

    Only coverage below the level is graded; intervals wider than they need be are said, not alerted.
    """
    t, w = thresholds, thresholds.window_days
    window = latest_window(_scored(forecasts), "target_date", w)
    signals = []
    for level in LEVELS:
        nominal = level / 100
        text = (f"coverage below {level}% by {t.coverage_orange * 100:g} points: orange, "
                f"by {t.coverage_red * 100:g}: red")
        if window.empty:
            signals.append(Signal(f"coverage_{level}", "grey", None, text, "No logged forecast has an actual value "
                                  f"yet, so the coverage of the {level}% intervals is not judged."))
            continue
        for model, rows in window.groupby("model", sort=True):
            key = f"coverage_{level}:{model}"
            rows = rows.dropna(subset=[f"lower_{level}", f"upper_{level}"])
            if rows.empty:
                signals.append(Signal(key, "grey", None, text, f"{model}'s forecasts of the last {w} days were logged "
                                      f"without {level}% intervals, so their coverage is not judged."))
                continue
            inside = (rows["actual"] >= rows[f"lower_{level}"]) & (rows["actual"] <= rows[f"upper_{level}"])
            coverage = float(inside.mean())
            status = grade(nominal - coverage, t.coverage_orange, t.coverage_red)
            facts = (f"{coverage:.0%} of the actual values of the last {w} days fell inside {model}'s {level}% "
                     f"intervals ({_plural(len(rows), 'forecast')})")
            if status == "green":
                wide = coverage - nominal >= t.coverage_orange - _TOLERANCE
                message = facts[0].upper() + facts[1:] + (": wider than they need be, which is not an alert."
                                                          if wide else ": as expected.")
            else:
                message = (f"Only {facts}, {(nominal - coverage) * 100:.0f} points below the level: the intervals are "
                           "too narrow now. Look at coverage over time and error by horizon (which horizons miss) and "
                           "at accuracy; the next refit recalibrates the intervals.")
            signals.append(Signal(key, status, coverage, text, message))
    return signals


def _drift_status(psi: float, ks_pvalue: float, thresholds: Thresholds) -> Status:
    if ks_pvalue >= thresholds.ks_alpha:
        return "green"
    return grade(psi, thresholds.psi_orange, thresholds.psi_red)


def drift_signals(result: DriftResult, thresholds: Thresholds) -> list[Signal]:
    """``drift:<variable>``: drift needs both a KS p-value below ``ks_alpha`` (beyond chance) and a PSI
    from ``psi_orange`` (orange) or ``psi_red`` (red) on (large enough to matter).

    One test alone would not do on these samples: with 28 days against a year, the PSI of a variable
    that has not changed at all averages about 0.15 (see :func:`population_stability_index`), and with a
    long window the KS test finds differences too small to matter.
    """
    t = thresholds
    text = f"KS p < {t.ks_alpha:g} and PSI from {t.psi_orange:g} (orange) or {t.psi_red:g} (red)"
    if result.table.empty:
        why = " ".join(result.notes) or "There is no daily data yet."
        return [Signal("drift", "grey", None, text, f"Drift is not judged. {why}")]
    signals = []
    for row in result.table.itertuples(index=False):
        key, name, w = f"drift:{row.variable}", row.variable, result.window_days
        if not row.judged:
            signals.append(Signal(key, "grey", None, text, f"Drift of {name} is not judged: {row.reason}."))
            continue
        status = _drift_status(row.psi, row.ks_pvalue, t)
        facts = f"KS p = {row.ks_pvalue:.2g}, PSI {row.psi:.2f}"
        if status == "green":
            message = f"{name} over the last {w} days is like the training data at the same time of year ({facts})."
            if row.ks_pvalue >= t.ks_alpha and row.psi >= t.psi_orange - _TOLERANCE:
                message += (f" The PSI is about what a {w}-day window shows by chance ({row.psi_by_chance:.2f}), and "
                            "the KS test finds no difference beyond chance.")
            elif row.ks_pvalue < t.ks_alpha:
                message += f" The KS test finds a difference, but too small to matter (PSI below {t.psi_orange:g})."
        else:
            where = ("The target no longer follows the season, the calendar and the temperature as in the training "
                     "data: expect forecasts to miss until the model is refitted on the new level; check accuracy."
                     if name == TARGET_COLUMN else
                     f"Check the source of {name} (a sensor, a unit or a feed change) and whether the weather is "
                     "unusual for the season: the model sees inputs unlike its training data.")
            message = (f"{name} has drifted: over the last {w} days it ran {row.shift_sd:+.1f} standard deviations "
                       f"from the training data at the same time of year ({facts}). {where}")
        signals.append(Signal(key, status, float(row.psi), text, message))
    return signals


def data_quality_signals(intake: pd.DataFrame, thresholds: Thresholds) -> list[Signal]:
    """``data_quality:invalid_share`` (share of invalid rows in the window's files) and
    ``data_quality:criticality`` (the worst file of the window: medium is orange, high is red)."""
    _require(intake, INTAKE_COLUMNS, "intake_files")
    t, w = thresholds, thresholds.window_days
    share_text = f"invalid rows: orange from {t.invalid_orange:.0%}, red from {t.invalid_red:.0%}"
    worst_text = "a file of medium criticality: orange, of high: red"
    window = latest_window(intake, "processed_at", w)
    if window.empty:
        none = "No inbox file has been taken in yet, so data quality is not judged (the operating loop reads them)."
        return [Signal("data_quality:invalid_share", "grey", None, share_text, none),
                Signal("data_quality:criticality", "grey", None, worst_text, none)]
    invalid, rows = float(_invalid_rows(window).sum()), int(window["rows_read"].sum())
    share = invalid / rows if rows else float(window["invalid_share"].astype(float).mean())
    status = grade(share, t.invalid_orange, t.invalid_red)
    facts = (f"{share:.1%} of the rows in the {_plural(len(window), 'inbox file')} of the last {w} days were invalid "
             f"({invalid:,.0f} of {rows:,} rows")
    if status == "green":
        share_message = facts + ")."
    else:
        kinds = _error_counts(window["errors"]).sum()
        top = f"; mostly {kinds.idxmax().removeprefix('errors_')}" if len(kinds) and kinds.max() > 0 else ""
        share_message = (f"{facts}{top}). Look at the data-quality charts and the bad rows archived beside each mixed "
                         "file, and ask the data provider what changed.")
    signals = [Signal("data_quality:invalid_share", status, share, share_text, share_message)]
    counts = window["criticality"].value_counts()
    high, medium = int(counts.get("high", 0)), int(counts.get("medium", 0))
    if high or medium:
        level, n = ("high", high) if high else ("medium", medium)
        names = ", ".join(window.loc[window["criticality"] == level, "file_name"].astype(str).head(3))
        message = (f"{_plural(n, 'inbox file')} of the last {w} days {'was' if n == 1 else 'were'} of {level} "
                   f"criticality ({names}): many of their rows were refused or they held serious errors. Look at the "
                   "files in the data-quality charts and in the archive (bad/).")
        signals.append(Signal("data_quality:criticality", "red" if high else "orange", float(n), worst_text, message))
    else:
        signals.append(Signal("data_quality:criticality", "green", 0.0, worst_text,
                              f"No file of medium or high criticality in the last {w} days."))
    return signals


def statuses(forecasts: pd.DataFrame, reference: ModelReference, drift_result: DriftResult, intake: pd.DataFrame,
             thresholds: Thresholds) -> list[Signal]:
    """Every signal: accuracy and coverage per model, drift per variable, data quality."""
    return [*accuracy_signals(forecasts, reference, thresholds), *coverage_signals(forecasts, thresholds),
            *drift_signals(drift_result, thresholds), *data_quality_signals(intake, thresholds)]


def cycle_provenance(forecast_record: str | Path | None) -> dict[str, str] | None:
    """Provenance rows of the cycle behind the page (its ``forecast`` product: the refit model,
    the data it was fitted on, the forecasts logged); None outside a cycle."""
    if not forecast_record:
        return None
    record = json.loads(Path(forecast_record).read_text())
    return {"model refit": f"{record['model']} (version {record['model_version']})",
            "fitted on data until": str(record["fitted_until"]),
            "forecasts logged": f"{record['logged']} scheduled, {record['folded']} served by the API folded in"}


@dataclass(frozen=True)
class CurrentState:
    """What a cycle judges: every signal, the drift behind the drift signals, and the last day
    of the daily series (the last actual value the forecasts are judged against; None without data)."""

    signals: list[Signal]
    drift: DriftResult
    last_actual: pd.Timestamp | None

    @property
    def drift_ks_pvalues(self) -> dict[str, float]:
        """The KS p-value of each variable whose drift was judged."""
        table = self.drift.table
        return {row.variable: float(row.ks_pvalue) for row in table[table["judged"].astype(bool)].itertuples()}


def current_state(warehouse: Warehouse, settings: Settings, artifact: str | Path) -> CurrentState:
    """Every signal now, computed as the monitoring notebook computes them (a cycle's alerts use
    these), with the drift and the last day of data behind them.

    ``artifact`` gives the model's cross-validated error and the end of its training data
    (the drift reference): the artifact the model comparison made, not a refit of it.
    """
    thresholds = Thresholds.from_settings(settings)
    reference = load_reference(artifact)
    forecasts = forecasts_with_actuals(warehouse, settings.series_id)
    files = intake_files(warehouse, settings.series_id)
    daily = warehouse.read_series("daily_series", settings.series_id)
    drifts = drift(daily, reference.training_end, thresholds.window_days)
    last = pd.Timestamp(daily["ts"].max()) if len(daily) else None
    return CurrentState(statuses(forecasts, reference, drifts, files, thresholds), drifts, last)


def status_table(signals: Sequence[Signal]) -> pd.DataFrame:
    """``signal, status, value, threshold, message``, the alerting ones first (red, then orange)."""
    order = {"red": 0, "orange": 1, "green": 2, "grey": 3}
    ranked = sorted(signals, key=lambda s: order[s.status])
    return pd.DataFrame([(s.key, s.status, s.value, s.threshold, s.message) for s in ranked],
                        columns=["signal", "status", "value", "threshold", "message"])


def styled_status_table(signals: Sequence[Signal]) -> Any:
    """:func:`status_table` for a report (:func:`helpers.publish.tables.table`): the status cell in
    its colour, values to 3 significant digits."""
    return (tables.table(status_table(signals), plain=["value"])  # a ratio, a share or a PSI: as a number
            .format({"value": formatting.number})
            .map(lambda s: f"background-color: {_BACKGROUNDS.get(s, '')}; font-weight: bold", subset=["status"]))


def summary(signals: Sequence[Signal]) -> str:
    """One Markdown paragraph: how many signals need attention, which, and which have no data."""
    alerting = [s for s in signals if s.alerting]
    grey = [s.key for s in signals if s.status == "grey"]
    if alerting:
        red = sum(s.status == "red" for s in alerting)
        names = ", ".join(f"`{s.key}` ({s.status})" for s in alerting)
        text = (f"**{len(alerting)} of {len(signals)} signals need attention** ({red} red, {len(alerting) - red} "
                f"orange): {names}. Their messages say what to look at.")
    else:
        judged = len(signals) - len(grey)
        text = f"**No signal needs attention**: {judged} of {len(signals)} judged, all green."
    if grey:
        text += f" Not judged (no data yet, or too little): {', '.join(f'`{k}`' for k in grey)}."
    return text


def describe_inputs(forecasts: pd.DataFrame, intake: pd.DataFrame, drift_result: DriftResult,
                    reference: ModelReference) -> str:
    """Markdown sentences on what the monitor read: forecasts and actuals, files, the drift reference."""
    lines = []
    if forecasts.empty:
        lines.append("The forecast log holds no forecast for this series yet: the operating loop logs one per cycle, "
                     "and the endpoint logs what it serves. Accuracy and coverage are shown once forecast days have "
                     "actual values.")
    else:
        scored = forecasts["actual"].notna()
        lines.append(
            f"The forecast log holds {_plural(len(forecasts), 'forecast')} of {forecasts['target_date'].nunique():,} "
            f"days ({forecasts['target_date'].min():%Y-%m-%d} to {forecasts['target_date'].max():%Y-%m-%d}) by "
            f"{_plural(forecasts['model_version'].nunique(), 'model version')}; {int(scored.sum()):,} have an actual "
            "value" + (f", the last for {forecasts.loc[scored, 'target_date'].max():%Y-%m-%d}." if scored.any()
                       else " yet."))
    if intake.empty:
        lines.append("No inbox file has been taken in yet, so there is no data-quality history.")
    else:
        verb = "was" if len(intake) == 1 else "were"
        lines.append(f"{_plural(len(intake), 'inbox file')} {verb} taken in between "
                     f"{intake['processed_at'].min():%Y-%m-%d} and {intake['processed_at'].max():%Y-%m-%d}.")
    if reference.note:
        lines.append(reference.note)
    elif reference.training_end is not None:
        lines.append(f"The model ({reference.selected_model}) was trained on data up to "
                     f"{reference.training_end:%Y-%m-%d} ({reference.source}).")
    if not drift_result.table.empty:
        row = drift_result.table.iloc[0]
        lines.append(f"Drift compares the latest window, {row['window_start']:%Y-%m-%d} to "
                     f"{row['window_end']:%Y-%m-%d}, with the data up to {row['reference_end']:%Y-%m-%d}.")
    lines += list(drift_result.notes)
    return "\n\n".join(lines)


# -- figures ------------------------------------------------------------------------------------------------
# Each figure is built as plain dicts (traces, axes, shapes, annotations) and validated once, by one
# ``go.Figure(data, layout)``: make_subplots, add_trace(row=, col=), add_hline and the update_* calls
# validate and copy the figure again at every call, which made the page's figures 4-5 times slower
# to build (``bench/cycle_pages.py``). The axes follow make_subplots' layout (row 1 on top, axes
# numbered row by row, its default spacing), and the lines and bands are add_hline's and add_vrect's
# shapes.
def _figure(traces: Sequence[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    import plotly.graph_objects as go

    return go.Figure(data=list(traces), layout=layout)


def _grid(rows: int, cols: int = 1, *, vertical_spacing: float | None = None, horizontal_spacing: float | None = None,
          shared_x: bool = False, shared_y: bool = False, titles: Sequence[str] = ()) -> dict[str, Any]:
    """The axes (and subplot titles, as annotations) of a ``rows`` x ``cols`` grid as make_subplots
    lays them out; :func:`_axes` names the axes of a cell."""
    vs = 0.3 / rows if vertical_spacing is None else vertical_spacing
    hs = 0.2 / cols if horizontal_spacing is None else horizontal_spacing
    height, width = (1 - vs * (rows - 1)) / rows, (1 - hs * (cols - 1)) / cols
    layout: dict[str, Any] = {}
    annotations = []
    for row in range(1, rows + 1):
        top = 1 - (row - 1) * (height + vs)
        for col in range(1, cols + 1):
            x, y = _axes(row, col, cols)
            left = (col - 1) * (width + hs)
            xaxis = {"anchor": y, "domain": [_unit(left), _unit(left + width)]}
            yaxis = {"anchor": x, "domain": [_unit(top - height), _unit(top)]}
            if shared_x and row < rows:  # every column's x axes follow its bottom one
                xaxis.update(matches=_axes(rows, col, cols)[0], showticklabels=False)
            if shared_y and col > 1:
                yaxis.update(matches=_axes(row, 1, cols)[1], showticklabels=False)
            layout[_axis_key(x)], layout[_axis_key(y)] = xaxis, yaxis
            k = (row - 1) * cols + col - 1
            if k < len(titles):
                annotations.append({"text": titles[k], "x": _unit(left + width / 2), "y": _unit(top), "xref": "paper",
                                    "yref": "paper", "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                                    "font": {"size": 16}})
    if annotations:
        layout["annotations"] = annotations
    return layout


def _unit(value: float) -> float:
    return min(1.0, max(0.0, round(value, 9)))


def _axes(row: int, col: int, cols: int) -> tuple[str, str]:
    """The x and y axis names of a grid cell (``x``/``y``, then ``x2``/``y2``, ... row by row)."""
    n = (row - 1) * cols + col
    return ("x", "y") if n == 1 else (f"x{n}", f"y{n}")


def _axis_key(name: str) -> str:
    """``x2`` -> ``xaxis2`` (the layout key of an axis)."""
    return f"{name[0]}axis{name[1:]}"


def _set_axis_title(layout: dict[str, Any], axis: str, text: str) -> None:
    layout.setdefault(_axis_key(axis), {})["title"] = {"text": text}


def _hline(y: float, line: dict[str, Any], axes: tuple[str, str] = ("x", "y")) -> dict[str, Any]:
    """A horizontal line across a subplot (``add_hline``'s shape)."""
    return {"type": "line", "xref": f"{axes[0]} domain", "x0": 0, "x1": 1, "yref": axes[1], "y0": y, "y1": y,
            "line": line}


def _hline_label(y: float, text: str, axes: tuple[str, str] = ("x", "y")) -> dict[str, Any]:
    """The label ``add_hline(annotation_text=...)`` puts at the line's right end."""
    return {"text": text, "x": 1, "xref": f"{axes[0]} domain", "xanchor": "right", "y": y, "yref": axes[1],
            "yanchor": "bottom", "showarrow": False}


def _empty_figure(title: str, x_title: str, y_title: str, message: str) -> go.Figure:
    return _figure([], {
        "title": {"text": title}, "height": 300,
        "xaxis": {"title": {"text": x_title}, "visible": True, "showticklabels": False},
        "yaxis": {"title": {"text": y_title}, "showticklabels": False},
        "annotations": [{"text": message, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper", "showarrow": False,
                         "font": {"size": 14}}]})


NO_ACTUALS = "No forecast with an actual value yet"
NO_FILES = "No inbox file taken in yet"


#: Model versions drawn one line each; a loop that refits every cycle makes a version a day.
MAX_VERSIONS = 8


def _latest_versions(table: pd.DataFrame, max_versions: int) -> tuple[pd.DataFrame, pd.Series, str]:
    """The rows of the ``max_versions`` versions that forecast latest, their ``model @ version`` labels
    and a title suffix saying how many were left out."""
    labels = table["model"].astype(str) + " @ " + table["model_version"].astype(str)
    order = table.assign(label=labels).groupby("label")["period"].min().sort_values()
    keep = list(order.index[-max_versions:])
    shown = labels.isin(keep)
    suffix = f" (the latest {len(keep)} of {len(order)} versions)" if len(order) > len(keep) else ""
    return table[shown], labels[shown], suffix


def _line(x: Any, y: Any, name: str, colour: str, axes: tuple[str, str] | None = None, **more: Any) -> dict[str, Any]:
    """A ``lines+markers`` scatter trace, on ``axes`` (a grid cell's, :func:`_axes`) when given."""
    on = {"xaxis": axes[0], "yaxis": axes[1]} if axes else {}
    return {"type": "scatter", "x": x, "y": y, "mode": "lines+markers", "name": name, "line": {"color": colour},
            **on, **more}


def plot_error_over_time(errors: pd.DataFrame, max_versions: int = MAX_VERSIONS) -> go.Figure:
    """MAE, RMSE, MAPE and bias per period (:func:`error_over_time`), one line per model version
    (the ``max_versions`` latest)."""
    title = "Forecast error over time, by model version"
    if errors.empty:
        return _empty_figure(title, "period", "error", NO_ACTUALS)
    errors, labels, suffix = _latest_versions(errors, max_versions)
    metrics = {"mae": "MAE", "rmse": "RMSE", "mape": "MAPE (%)", "bias": "bias (actual - forecast)"}
    rows = len(metrics)
    layout = _grid(rows, shared_x=True, vertical_spacing=0.05)
    parts = {label: part for label, part in errors.groupby(labels, sort=False)}
    traces = []
    for i, (column, name) in enumerate(metrics.items(), start=1):
        axes = _axes(i, 1, 1)
        traces += [_line(part["period"], part[column], label, _PALETTE[j % len(_PALETTE)], axes, legendgroup=label,
                         showlegend=i == 1) for j, (label, part) in enumerate(parts.items())]
        _set_axis_title(layout, axes[1], name)
    bottom = _axes(rows, 1, 1)
    _set_axis_title(layout, bottom[0], "period (day forecast)")
    layout.update(title={"text": title + suffix}, height=750, legend={"title": {"text": "model @ version"}},
                  shapes=[_hline(0, {"color": "grey", "dash": "dot"}, bottom)])
    return _figure(traces, layout)


def plot_error_by_horizon(by_horizon: pd.DataFrame) -> go.Figure:
    """MAE and bias per horizon step (:func:`error_by_horizon`), one line per model."""
    title = "Forecast error by horizon step"
    if by_horizon.empty:
        return _empty_figure(title, "days ahead", "error", NO_ACTUALS)
    layout = _grid(1, 2, titles=("MAE", "bias (actual - forecast)"))
    traces = []
    for j, (model, part) in enumerate(by_horizon.groupby("model", sort=True)):
        colour = _PALETTE[j % len(_PALETTE)]
        traces += [_line(part["horizon_step"], part[column], model, colour, _axes(1, col, 2), legendgroup=model,
                         showlegend=col == 1) for col, column in ((1, "mae"), (2, "bias"))]
    for col in (1, 2):
        _set_axis_title(layout, _axes(1, col, 2)[0], "horizon step (days after the fit)")
    _set_axis_title(layout, "y", "MAE")
    _set_axis_title(layout, "y2", "mean error")
    layout.update(title={"text": title}, height=380, legend={"title": {"text": "model"}},
                  shapes=[_hline(0, {"color": "grey", "dash": "dot"}, _axes(1, 2, 2))])
    return _figure(traces, layout)


def plot_coverage_over_time(coverage: pd.DataFrame, thresholds: Thresholds | None = None,
                            max_versions: int = MAX_VERSIONS) -> go.Figure:
    """Coverage of the 80% and 95% intervals per period (:func:`coverage_over_time`), one line per
    model version (the ``max_versions`` latest), the level and the orange threshold below it dashed."""
    title = "Interval coverage over time"
    if coverage.empty:
        return _empty_figure(title, "period", "share of actual values inside", NO_ACTUALS)
    thresholds = thresholds or Thresholds()
    coverage, labels, suffix = _latest_versions(coverage, max_versions)
    cols = len(LEVELS)
    layout = _grid(1, cols, shared_y=True, titles=tuple(f"{level}% intervals" for level in LEVELS))
    parts = {label: part for label, part in coverage.groupby(labels, sort=False)}
    traces, shapes = [], []
    for col, level in enumerate(LEVELS, start=1):
        axes = _axes(1, col, cols)
        for j, (label, part) in enumerate(parts.items()):
            part = part[part["level"] == level]
            traces.append(_line(part["period"], part["coverage"], label, _PALETTE[j % len(_PALETTE)], axes,
                                legendgroup=label, showlegend=col == 1, customdata=part["n"],
                                hovertemplate="%{y:.0%} of %{customdata} forecasts"))
        shapes += [_hline(level / 100, {"color": "black", "dash": "dash"}, axes),
                   _hline(level / 100 - thresholds.coverage_orange, {"color": COLOURS["orange"], "dash": "dot"}, axes)]
        _set_axis_title(layout, axes[0], "period (day forecast)")
        layout[_axis_key(axes[1])].update(range=[0, 1.05], tickformat=".0%")
    _set_axis_title(layout, "y", "share of actual values inside")
    layout.update(title={"text": title + suffix}, height=400, legend={"title": {"text": "model @ version"}},
                  shapes=shapes)
    return _figure(traces, layout)


def plot_forecast_vs_actual(frame: pd.DataFrame, days: int = 28, model: str | None = None) -> go.Figure:
    """Each day's latest forecast (the shortest horizon) with its 80% and 95% intervals, and the
    actual value where it is known: the last ``days`` days with an actual value, then the days
    still to come (the last ``days`` days forecast while no actual value is known).

    ``model`` defaults to the model of the latest forecast issued.
    """
    title = f"Forecast against actual: the last {days} days with actual values, and the days ahead"
    _require(frame, FORECAST_COLUMNS, "forecasts_with_actuals")
    if frame.empty:
        return _empty_figure(title, "day", "daily value", "No forecast logged yet")
    model = model or str(frame.loc[frame["issued_at"].idxmax(), "model"])
    rows = frame[frame["model"] == model]
    rows = rows.sort_values(["target_date", "horizon_step"]).drop_duplicates("target_date")
    known = rows.loc[rows["actual"].notna(), "target_date"]
    end = known.max() if len(known) else rows["target_date"].max()
    rows = rows[rows["target_date"] > end - pd.Timedelta(days=days)]
    x = rows["target_date"]
    traces = []
    for level, opacity in ((95, 0.15), (80, 0.3)):
        traces += [{"type": "scatter", "x": x, "y": rows[f"upper_{level}"], "mode": "lines", "line": {"width": 0},
                    "showlegend": False, "hoverinfo": "skip"},
                   {"type": "scatter", "x": x, "y": rows[f"lower_{level}"], "mode": "lines", "line": {"width": 0},
                    "fill": "tonexty", "fillcolor": f"rgba(31,119,180,{opacity})", "name": f"{level}% interval"}]
    traces += [_line(x, rows["forecast"], f"forecast ({model})", "#1f77b4", customdata=rows["horizon_step"],
                     hovertemplate="%{y:.4g}, %{customdata} days ahead"),
               _line(x, rows["actual"], "actual", "black")]
    return _figure(traces, {"title": {"text": title}, "xaxis": {"title": {"text": "day"}},
                            "yaxis": {"title": {"text": "daily value (the forecast's scale)"}}, "height": 420})


def plot_drift_psi(result: DriftResult, thresholds: Thresholds | None = None) -> go.Figure:
    """PSI per variable, coloured by status, with the orange and red thresholds and the PSI expected by chance."""
    title = "Drift: population stability index of the deseasonalised values"
    judged = result.table[result.table["judged"].astype(bool)] if not result.table.empty else result.table
    if judged.empty:
        return _empty_figure(title, "variable", "PSI", "No variable judged for drift (the status table says why)")
    thresholds = thresholds or Thresholds()
    colours = [COLOURS[_drift_status(psi, p, thresholds)] for psi, p in zip(judged["psi"], judged["ks_pvalue"])]
    traces = [{"type": "bar", "x": judged["variable"], "y": judged["psi"], "marker": {"color": colours}, "name": "PSI",
               "text": [f"KS p = {p:.2g}" for p in judged["ks_pvalue"]], "textposition": "outside"},
              {"type": "scatter", "x": judged["variable"], "y": judged["psi_by_chance"], "mode": "markers",
               "name": "PSI by chance", "marker": {"symbol": "line-ew-open", "size": 30, "color": "black"}}]
    lines = [(thresholds.psi_orange, "orange"), (thresholds.psi_red, "red")]
    return _figure(traces, {
        "title": {"text": title}, "xaxis": {"title": {"text": "variable"}},
        "yaxis": {"title": {"text": "PSI (window against reference)"}}, "height": 380,
        "shapes": [_hline(y, {"color": COLOURS[name], "dash": "dash"}) for y, name in lines],
        "annotations": [_hline_label(y, name) for y, name in lines]})


def _drift_panels(result: DriftResult, title: str, x_title: str, y_title: str | None, panel: Any) -> go.Figure:
    """One panel per variable with values (its title says when it was not judged), the x title on the last;
    each panel's y title is ``y_title``, or its variable's name when None.

    ``panel(part, axes, first)`` gives (traces, shapes) of one variable's ``values`` rows drawn on
    ``axes``; ``first`` is the first panel's, whose traces carry the legend."""
    variables = list(result.values["variable"].unique()) if not result.values.empty else []
    if not variables:
        return _empty_figure(title, x_title, y_title or "value", "No variable judged for drift")
    judged = dict(zip(result.table["variable"], result.table["judged"].astype(bool)))
    names = [v if judged.get(v) else f"{v} (not judged: the season is not in the reference)" for v in variables]
    layout = _grid(len(variables), titles=names, vertical_spacing=0.15)
    traces, shapes = [], []
    for i, (variable, part) in enumerate(result.values.groupby("variable", sort=False), start=1):
        axes = _axes(i, 1, 1)
        drawn, more = panel(part, axes, i == 1)
        traces += drawn
        shapes += more
        _set_axis_title(layout, axes[1], y_title or variable)
    _set_axis_title(layout, _axes(len(variables), 1, 1)[0], x_title)
    layout.update(title={"text": title}, height=320 * len(variables))
    if shapes:
        layout["shapes"] = shapes
    return _figure(traces, layout)


_PARTS = (("reference", "grey"), ("window", "#d62728"))


def plot_drift_ecdf(result: DriftResult) -> go.Figure:
    """Empirical distribution functions of the deseasonalised values, reference against window: the KS
    statistic is the widest vertical gap between the two curves."""
    def panel(part: pd.DataFrame, axes: tuple[str, str], first: bool) -> tuple[list, list]:
        traces = []
        for name, colour in _PARTS:
            x = np.sort(part.loc[part["part"] == name, "residual"].to_numpy(dtype=float))
            traces.append({"type": "scatter", "x": x, "y": np.arange(1, len(x) + 1) / len(x), "mode": "lines",
                           "line": {"color": colour, "shape": "hv"}, "name": name, "legendgroup": name,
                           "showlegend": first, "xaxis": axes[0], "yaxis": axes[1]})
        return traces, []

    return _drift_panels(result, "Drift: distribution of the deseasonalised values, training data against the latest "
                         "window", "value minus seasonal profile", "share at or below", panel)


def plot_deseasonalised(result: DriftResult) -> go.Figure:
    """Deseasonalised values over time: the reference in grey, the latest window in red."""
    def panel(part: pd.DataFrame, axes: tuple[str, str], first: bool) -> tuple[list, list]:
        traces = []
        for name, colour in _PARTS:
            rows = part[part["part"] == name]
            traces.append({"type": "scatter", "x": rows["ts"], "y": rows["residual"], "mode": "lines", "name": name,
                           "legendgroup": name, "showlegend": first, "line": {"color": colour, "width": 1},
                           "xaxis": axes[0], "yaxis": axes[1]})
        return traces, [_hline(0, {"color": "black", "dash": "dot"}, axes)]

    return _drift_panels(result, "Drift: values minus their seasonal profile over time", "day", "value minus profile",
                         panel)


def plot_seasonal_profile(result: DriftResult) -> go.Figure:
    """Values and the seasonal profile fitted on the reference: what the drift measures leave out."""
    def panel(part: pd.DataFrame, axes: tuple[str, str], first: bool) -> tuple[list, list]:
        traces = []
        for name in ("reference", "window"):  # apart, so that no line crosses the days in neither
            rows = part[part["part"] == name]
            legend = first and name == "reference"
            common = {"type": "scatter", "x": rows["ts"], "mode": "lines", "showlegend": legend, "xaxis": axes[0],
                      "yaxis": axes[1]}
            traces += [{**common, "y": rows["value"], "name": "value", "legendgroup": "value",
                        "line": {"color": "grey", "width": 1}},
                       {**common, "y": rows["profile"], "name": "seasonal profile", "legendgroup": "profile",
                        "line": {"color": "#1f77b4"}}]
        window = part.loc[part["part"] == "window", "ts"]
        band = {"type": "rect", "xref": axes[0], "x0": window.min(), "x1": window.max(), "yref": f"{axes[1]} domain",
                "y0": 0, "y1": 1, "fillcolor": "#d62728", "opacity": 0.1, "line": {"width": 0}}
        return traces, [band]

    return _drift_panels(result, "Drift: values and the seasonal profile fitted on the training data", "day", None,
                         panel)


# -- figures: data quality ----------------------------------------------------------------------------------
def _dq_layout(title: str, y_title: str, **more: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "xaxis": {"title": {"text": "period (file taken in)"}},
            "yaxis": {"title": {"text": y_title}}, "height": 350, **more}


def plot_invalid_share(dq: pd.DataFrame, thresholds: Thresholds | None = None) -> go.Figure:
    """Share of invalid rows per period (:func:`data_quality_over_time`) with the orange and red thresholds."""
    title = "Share of invalid rows in the files taken in"
    if dq.empty:
        return _empty_figure(title, "period", "invalid rows", NO_FILES)
    thresholds = thresholds or Thresholds()
    colours = [COLOURS[grade(v, thresholds.invalid_orange, thresholds.invalid_red)] for v in dq["invalid_share"]]
    bar = {"type": "bar", "x": dq["period"], "y": dq["invalid_share"], "marker": {"color": colours},
           "name": "invalid share", "customdata": dq["files"],
           "hovertemplate": "%{y:.2%} of the rows of %{customdata} files"}
    lines = [(getattr(thresholds, f"invalid_{name}"), name) for name in ("orange", "red")]
    layout = _dq_layout(title, "invalid rows", shapes=[_hline(y, {"color": COLOURS[name], "dash": "dash"})
                                                       for y, name in lines],
                        annotations=[_hline_label(y, name) for y, name in lines])
    layout["yaxis"]["tickformat"] = ".1%"
    return _figure([bar], layout)


def plot_rows(dq: pd.DataFrame) -> go.Figure:
    """Rows loaded and rows invalid per period, stacked."""
    title = "Rows taken in per period: loaded and invalid"
    if dq.empty:
        return _empty_figure(title, "period", "rows", NO_FILES)
    bars = [{"type": "bar", "x": dq["period"], "y": dq[column], "name": name, "marker": {"color": COLOURS[colour]}}
            for column, name, colour in (("rows_loaded", "loaded", "green"), ("invalid_rows", "invalid", "red"))]
    return _figure(bars, _dq_layout(title, "rows", barmode="stack"))


def plot_errors_by_kind(dq: pd.DataFrame) -> go.Figure:
    """Invalid rows per kind of error and period, stacked."""
    title = "Errors by kind"
    kinds = [c for c in dq.columns if c.startswith("errors_")]
    if dq.empty or not kinds or dq[kinds].to_numpy().sum() == 0:
        return _empty_figure(title, "period", "rows with the error", NO_FILES if dq.empty else "No error in any file")
    bars = [{"type": "bar", "x": dq["period"], "y": dq[kind], "name": kind.removeprefix("errors_"),
             "marker": {"color": _PALETTE[i % len(_PALETTE)]}} for i, kind in enumerate(kinds)]
    return _figure(bars, _dq_layout(title, "rows with the error", barmode="stack", legend={"title": {"text": "kind"}}))


def plot_criticality(dq: pd.DataFrame) -> go.Figure:
    """Files per period by criticality (low green, medium orange, high red), stacked."""
    title = "Files taken in by criticality"
    if dq.empty:
        return _empty_figure(title, "period", "files", NO_FILES)
    colours = {"low": COLOURS["green"], "medium": COLOURS["orange"], "high": COLOURS["red"]}
    bars = [{"type": "bar", "x": dq["period"], "y": dq[f"criticality_{c}"], "name": c, "marker": {"color": colours[c]}}
            for c in CRITICALITIES]
    return _figure(bars, _dq_layout(title, "files", barmode="stack", legend={"title": {"text": "criticality"}}))


def plot_files(intake: pd.DataFrame, thresholds: Thresholds | None = None) -> go.Figure:
    """Each file taken in: its invalid share against when it came, coloured by criticality, shaped by outcome."""
    title = "Every file taken in: share of invalid rows"
    _require(intake, INTAKE_COLUMNS, "intake_files")
    if intake.empty:
        return _empty_figure(title, "taken in at", "invalid rows", NO_FILES)
    thresholds = thresholds or Thresholds()
    colours = {"low": COLOURS["green"], "medium": COLOURS["orange"], "high": COLOURS["red"]}
    symbols = {"good": "circle", "mixed": "diamond", "bad": "x"}
    traces = []
    for outcome in OUTCOMES:
        part = intake[intake["outcome"] == outcome]
        if part.empty:
            continue
        traces.append({
            "type": "scatter", "x": part["processed_at"], "y": part["invalid_share"], "mode": "markers",
            "name": outcome, "marker": {"symbol": symbols[outcome], "size": 10,
                                        "color": [colours.get(c, "grey") for c in part["criticality"]]},
            "customdata": np.column_stack([part["file_name"], part["criticality"], part["rows_read"]]),
            "hovertemplate": "%{customdata[0]}: %{y:.1%} of %{customdata[2]} rows, %{customdata[1]} criticality"})
    return _figure(traces, {
        "title": {"text": title}, "xaxis": {"title": {"text": "taken in at"}},
        "yaxis": {"title": {"text": "invalid rows"}, "tickformat": ".0%"}, "height": 380,
        "legend": {"title": {"text": "outcome (colour: criticality)"}},
        "shapes": [_hline(thresholds.invalid_orange, {"color": COLOURS["orange"], "dash": "dash"})]})
