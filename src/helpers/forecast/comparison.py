"""The model comparison and the final fit, as the notebook and the pipeline call them."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from helpers.core.provenance import git_commit, package_versions
from helpers.forecast import artifact
from helpers.forecast import backtest as bt
from helpers.forecast import calibration
from helpers.forecast.cv_cache import FoldCache
from helpers.forecast.models import (
    CALENDAR_MODELS, DEFAULT_LEVELS, TEMPERATURE_MODELS, Forecaster, interval_columns, model_catalog,
)
from helpers.core.settings import SEASONS
from helpers.data.series import GRAIN_FREQ, SeriesNotAnalysableError, degree_days, require_length
from helpers.data.calendar import workday_flags


@dataclass(frozen=True)
class ComparisonConfig:
    """One comparison: the grain, its seasonal periods, horizon, folds and models."""

    grain: str
    freq: str
    season_lengths: tuple[int, ...]
    horizon: int
    n_folds: int
    n_selection: int
    min_train: int
    models: tuple[str, ...]
    n_members: int = 3
    max_horizon: int = 28
    holiday_country: str | None = None
    holiday_subdiv: str | None = None
    hemisphere: str | None = None
    #: Each model's settings (``model_settings``), for the models of this comparison.
    model_settings: dict = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings, grain: str) -> ComparisonConfig:
        """The comparison of one grain (``daily`` or ``hourly``) from the checked settings."""
        if grain not in GRAIN_FREQ:
            raise ValueError(f"grain must be one of {sorted(GRAIN_FREQ)}, got {grain!r}")
        prefix = f"{grain}_"
        n_folds = getattr(settings, prefix + "folds")
        models = tuple(getattr(settings, prefix + "models").split(","))
        return cls(grain, GRAIN_FREQ[grain], SEASONS[grain], getattr(settings, prefix + "horizon"), n_folds,
                   n_folds // 2, getattr(settings, prefix + "min_train"), models,
                   max_horizon=settings.max_horizon if grain == "daily" else settings.max_horizon * 24,
                   holiday_country=settings.holiday_country, holiday_subdiv=settings.holiday_subdiv,
                   hemisphere=settings.hemisphere,
                   model_settings={m: v for m, v in settings.model_settings.items() if m in models})

    @classmethod
    def parse(cls, grain: str, horizon: int, n_folds: int, min_train: int, models: str, max_horizon: int,
              holiday_country: str | None = None, holiday_subdiv: str | None = None,
              hemisphere: str | None = None) -> ComparisonConfig:
        """A comparison from plain values (scripts and tests; the pipeline uses :meth:`from_settings`)."""
        if grain not in GRAIN_FREQ:
            raise ValueError(f"grain must be one of {sorted(GRAIN_FREQ)}, got {grain!r}")
        if n_folds < 2:
            raise ValueError(f"n_folds must be at least 2 (selection and evaluation), got {n_folds}")
        names = tuple(m.strip() for m in models.split(",") if m.strip())
        return cls(grain, GRAIN_FREQ[grain], SEASONS[grain], horizon, n_folds, n_folds // 2, min_train, names,
                   max_horizon=max_horizon, holiday_country=holiday_country, holiday_subdiv=holiday_subdiv,
                   hemisphere=hemisphere)

    def min_length(self) -> int:
        """The fewest steps a series needs for this comparison: ``n_folds`` distinct cutoffs, the
        last ``horizon`` steps before the end, after a first training window of ``min_train``
        steps or, as :func:`run_comparison` allows, half the series, but never less than two of
        the longest seasons."""
        floor = min(self.min_train, 2 * max(self.season_lengths))

        def fits(n: int) -> bool:
            train = min(self.min_train, n // 2)
            return train >= floor and n - self.horizon - train >= self.n_folds - 1

        return next(n for n in itertools.count(2 * floor) if fits(n))

    def with_calendar(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with ``workday`` from the holiday calendar when one is configured.

        Calendar models then see the same flag in the backtest as in production, where only
        the calendar knows the future; without a calendar the observed flag is kept.
        """
        if not self.holiday_country:
            return frame
        return frame.assign(workday=workday_flags(frame["ds"], self.holiday_country, self.holiday_subdiv).to_numpy())

    def build(self, names: Sequence[str], frame: pd.DataFrame) -> list[Forecaster]:
        """Fresh instances of ``names`` for a frame prepared by ``with_calendar``.

        Work days enter a model only with a holiday calendar, the one source of future work
        days: without one, calendar models are left out and Prophet runs without the flag.
        """
        return model_catalog(self.season_lengths, self.horizon, names,
                             has_temperature="temperature" in frame and bool(frame["temperature"].notna().all()),
                             has_workday=bool(self.holiday_country) and "workday" in frame
                             and bool(frame["workday"].notna().all()),
                             options=self.model_settings)

    def left_out(self, built: Sequence[Forecaster], frame: pd.DataFrame) -> list[str]:
        """Why requested models were not built, one sentence per reason (empty when all were)."""
        names = {m.name for m in built}
        missing = [m for m in self.models if m not in names]
        calendar = [m for m in missing if m in CALENDAR_MODELS]
        temperature = [m for m in missing if m in TEMPERATURE_MODELS]
        notes = []
        if calendar:
            reason = ("no public-holiday calendar is set for this series" if not self.holiday_country
                      else "the series has no complete work-day flag")
            notes.append(f"{', '.join(calendar)} left out: calendar models need future work days, and {reason}. "
                         "Set holiday_country (and holiday_subdiv) in env.yaml or HELPERS_HOLIDAY_COUNTRY / "
                         "HELPERS_HOLIDAY_SUBDIV to compare them.")
        if temperature:
            notes.append(f"{', '.join(temperature)} left out: the series has no complete temperature "
                         "(temperature_col).")
        return notes


@dataclass
class Comparison:
    """A finished comparison.

    ``forecasts`` holds the served intervals, each fold's as chosen at its cutoff
    (:func:`calibration.calibrate_by_fold`); ``calibrations`` are those the artifact serves,
    learnt on every fold. In ``scores``, ``coverage_<level>`` is the served intervals' coverage,
    ``calibrated_coverage_<level>`` the conformal ones' and ``raw_coverage_<level>`` the models' own.
    """

    config: ComparisonConfig
    forecasts: pd.DataFrame
    timings: pd.DataFrame
    scores: pd.DataFrame
    selected: str
    members: list[str]
    candidates: list[str]
    conditional: list[str] = field(default_factory=list)
    calendar: list[str] = field(default_factory=list)
    calibrations: dict[str, dict[int, calibration.IntervalCalibration]] = field(default_factory=dict)
    #: What the comparison changed or left out of the request, and why (shown in the report).
    notes: list[str] = field(default_factory=list)

    @property
    def selection_cutoffs(self) -> list[pd.Timestamp]:
        return sorted(self.forecasts.loc[self.forecasts["role"] == "selection", "cutoff"].unique())

    @property
    def evaluation_cutoffs(self) -> list[pd.Timestamp]:
        return sorted(self.forecasts.loc[self.forecasts["role"] == "evaluation", "cutoff"].unique())

    def leaderboard(self) -> pd.DataFrame:
        """Evaluation-fold metrics per model, with fit time and the model's role; the coverage
        columns are those of the served intervals (:func:`interval_coverage` has all three)."""
        board = bt.leaderboard(self.scores, self.evaluation_cutoffs)
        board = board.drop(columns=[f"{kind}coverage_{lv}" for kind in ("raw_", "calibrated_")
                                    for lv in DEFAULT_LEVELS]).rename(
            columns={f"coverage_{lv}": f"served coverage_{lv}" for lv in DEFAULT_LEVELS})
        board["median fit+predict s"] = self.timings.groupby("model")["seconds"].median()
        kinds = {**{m: "conditional (observed future temperature)" for m in self.conditional},
                 **{m: "calendar (work days)" for m in self.calendar}, "ensemble": "ensemble"}
        board["kind"] = [kinds.get(m, "univariate") for m in board.index]
        return board


def prepare_frame(view: pd.DataFrame) -> pd.DataFrame:
    """``load_series`` output with degree-days; long gaps (still missing) are not allowed."""
    if view["y"].isna().any():
        raise ValueError(f"{int(view['y'].isna().sum())} steps are still missing after the short-gap fill; "
                         "the comparison needs a complete series (raise max_fill_steps or trim the series)")
    return view.assign(degree_days=degree_days(view["temperature"]))


def run_comparison(frame: pd.DataFrame, config: ComparisonConfig, *, jobs: int = 1,
                   cache_dir: str | Path | None = None) -> Comparison:
    """Backtest every model, choose on the selection folds, add the ensemble, calibrate the
    intervals (each fold on the folds finished before it; the artifact's on every fold), score
    everything.

    ``jobs`` processes fit the folds (0: one per core; the result does not depend on it). With
    ``cache_dir``, folds fitted before on the same data, fold settings and model settings are read
    from there (:mod:`helpers.forecast.cv_cache`), and new ones stored.

    Production candidates need nothing about the future but its dates: univariate models,
    and calendar models when a holiday calendar is configured. The ensemble averages the
    members' own bounds and is then calibrated like any model.

    Raises :class:`SeriesNotAnalysableError` for a series shorter than
    :meth:`ComparisonConfig.min_length` or one that never changes (every model would forecast it
    exactly: nothing to compare).
    """
    g = config.grain
    require_length(len(frame), config.min_length(), f"the {g} model comparison",
                   f"{config.n_folds} folds of {config.horizon} steps ahead after at least "
                   f"{min(config.min_train, 2 * max(config.season_lengths))} steps of training; for a shorter series "
                   f"lower {g}_folds or {g}_horizon")
    if frame["y"].nunique() == 1:
        raise SeriesNotAnalysableError(f"the {g} series is {frame['y'].iloc[0]:g} at every step: every model "
                                       "forecasts it exactly, so the model comparison has nothing to compare; load a "
                                       "series that varies")
    frame = config.with_calendar(frame)
    models = config.build(config.models, frame)
    notes = config.left_out(models, frame)
    if config.min_train > len(frame) // 2:
        # The folds need the back half of the series; the report says what was changed.
        notes.append(f"{config.grain}_min_train is {config.min_train} steps, more than half of the "
                     f"{len(frame)}-step series: the first cutoff was moved to step {len(frame) // 2} so the folds fit. "
                     f"Set {config.grain}_min_train (env.yaml or HELPERS_{config.grain.upper()}_MIN_TRAIN) to at most "
                     f"{len(frame) // 2} to silence this.")
        config = replace(config, min_train=len(frame) // 2)
    cutoffs = bt.make_cutoffs(frame["ds"], config.horizon, config.n_folds, config.min_train)
    cache = None if cache_dir is None else FoldCache(Path(cache_dir) / config.grain, {
        "grain": config.grain, "horizon": config.horizon, "n_folds": config.n_folds, "min_train": config.min_train})
    forecasts, timings = bt.backtest(frame, models, config.horizon, cutoffs, jobs=jobs, cache=cache)
    if cache is not None and cache.unwritable:
        notes.append(f"{cache.unwritable} folds could not be stored in the cross-validation cache ({cache.error}): "
                     "the next run fits them again. Free space or make the products folder writable.")
    forecasts = bt.assign_roles(forecasts, config.n_selection)
    scores = bt.score(forecasts, frame, config.season_lengths[0])
    candidates = [m.name for m in models if not m.covariates or (config.holiday_country and not m.conditional)]
    selected, members = bt.select(scores, sorted(cutoffs)[:config.n_selection], candidates, config.n_members)
    forecasts = bt.add_ensemble(forecasts, members)
    ensemble_columns = ["ensemble", *[f"ensemble-{c}" for c in interval_columns()]]
    ensemble_scores = bt.score(forecasts[["unique_id", "ds", "cutoff", "y", *ensemble_columns]], frame,
                               config.season_lengths[0])
    scores = pd.concat([scores, ensemble_scores], ignore_index=True)
    names = bt.model_names(forecasts)
    # The artifact's intervals learn from every fold; each fold's, from the folds finished before it.
    calibrations = calibration.served_calibrations(forecasts, names)
    calibrated, forecasts = calibration.calibrate_by_fold(forecasts, names)
    raw = {f"coverage_{lv}": f"raw_coverage_{lv}" for lv in DEFAULT_LEVELS}
    scores = pd.concat([scores.assign(metric=scores["metric"].replace(raw)),
                        calibration.fold_coverage(calibrated, names, metric="calibrated_coverage"),
                        calibration.fold_coverage(forecasts, names)], ignore_index=True)
    return Comparison(config, forecasts, timings, scores, selected, members, candidates,
                      conditional=[m.name for m in models if m.conditional],
                      calendar=[m.name for m in models if m.covariates and not m.conditional],
                      calibrations=calibrations, notes=notes)


def cache_folder(settings, selection_path: str | Path | None = None) -> Path | None:
    """Where the comparison keeps its folds: beside the selection it writes (``cv_cache``), or
    ``None`` when the ``cv_cache`` setting is off."""
    if not settings.cv_cache:
        return None
    selection = Path(selection_path) if selection_path else settings.products / "model" / "selection.json"
    return selection.parent / "cv_cache"


def fit_times(*comparisons: Comparison) -> pd.DataFrame:
    """Median fit+predict seconds per model (rows) and grain (columns)."""
    return pd.concat([c.timings.assign(series=c.config.grain) for c in comparisons]).pivot_table(
        index="model", columns="series", values="seconds", aggfunc="median")


def cache_summary(*comparisons: Comparison) -> str:
    """How many folds each comparison fitted and how many it read from the cache, in words."""
    parts = []
    for c in comparisons:
        cached = int(c.timings["cached"].sum()) if "cached" in c.timings else 0
        parts.append(f"{c.config.grain}: {len(c.timings) - cached} of {len(c.timings)} (model, fold) fits run, "
                     f"{cached} read from the cross-validation cache")
    return "; ".join(parts) + "."


def notes_markdown(*comparisons: Comparison, settings_notes: Sequence[str] = ()) -> str:
    """What reading the settings and running the comparisons changed or left out, as a Markdown list."""
    notes = dict.fromkeys([*settings_notes, *[note for c in comparisons for note in c.notes]])
    return "\n".join(f"- {note}" for note in notes) or "Nothing: every requested model ran with the settings as given."


def interval_coverage(comparison: Comparison) -> pd.DataFrame:
    """Nominal against achieved coverage per model and level on the evaluation folds.

    Columns: ``raw``, ``calibrated`` and ``served``: share of evaluation-fold actual values
    inside the model's own interval, the conformal one (each fold calibrated on the folds
    finished before it) and the one chosen at each cutoff; ``served now`` and ``factor``: what
    the artifact serves, learnt on every fold (``calibrated`` or ``model's own``). Rows in
    leaderboard order.
    """
    board = bt.leaderboard(comparison.scores, comparison.evaluation_cutoffs)
    rows = []
    for model in board.index:
        for lv in DEFAULT_LEVELS:
            fitted = comparison.calibrations[model][lv]
            rows.append({"model": model, "nominal": lv / 100,
                         "raw": board.loc[model, f"raw_coverage_{lv}"],
                         "calibrated": board.loc[model, f"calibrated_coverage_{lv}"],
                         "served": board.loc[model, f"coverage_{lv}"],
                         "served now": "model's own" if fitted.method == "model" else "calibrated",
                         "factor": fitted.factor})
    return pd.DataFrame(rows).set_index(["model", "nominal"])


def accuracy_summary(comparison: Comparison) -> pd.DataFrame:
    """RMSE ratios against seasonal naive on the evaluation folds."""
    board = comparison.leaderboard()
    baseline = float(board.loc["seasonal_naive", "rmse"])
    rows = [("selected model (chosen on selection folds)", comparison.selected), ("ensemble", "ensemble")]
    groups = [("best univariate model", [m for m in comparison.candidates if m not in comparison.calendar]),
              ("best calendar model (holiday-calendar work days)",
               [m for m in comparison.candidates if m in comparison.calendar]),
              ("best conditional model (uses observed temperature)", comparison.conditional)]
    for what, names in groups:
        ranked = [m for m in board.index if m in names]
        if ranked:
            rows.append((f"{what} on evaluation folds", ranked[0]))
    return pd.DataFrame([{"what": what, "model": m, "rmse": float(board.loc[m, "rmse"]),
                          "seasonal naive rmse": baseline, "ratio to seasonal naive": float(board.loc[m, "rmse"]) / baseline}
                         for what, m in rows])


def forecast_paths(frame: pd.DataFrame, config: ComparisonConfig, names: list[str],
                   level=DEFAULT_LEVELS) -> dict[str, pd.DataFrame]:
    """Fit each named production candidate on all of ``frame`` and forecast ``max_horizon`` steps.

    Future work days come from the holiday calendar; without one only univariate models
    can be fitted here.
    """
    start = frame["ds"].iloc[-1] + pd.tseries.frequencies.to_offset(config.freq)
    future = config.with_calendar(pd.DataFrame({"ds": pd.date_range(start, periods=config.max_horizon,
                                                                    freq=config.freq)}))
    frame = config.with_calendar(frame)
    models = model_catalog(config.season_lengths, config.max_horizon, names, False, bool(config.holiday_country),
                           options=config.model_settings)
    return {m.name: m.fit(frame).predict(future, level).assign(ds=future["ds"]) for m in models}


def artifact_models(frame: pd.DataFrame, config: ComparisonConfig, selected: str, members: list[str],
                    metrics: dict[str, dict[str, float]],
                    calibrations: calibration.Calibrations) -> dict[str, dict]:
    """The selected model, the ensemble members and the ensemble: calibrated forecast paths,
    the calibration and the CV metrics.

    The ensemble averages the members' own bounds, as in the backtest, before its calibration.
    """
    names = list(dict.fromkeys([selected, *members]))
    missing = [m for m in [*names, "ensemble"] if m not in calibrations]
    if missing:
        raise ValueError(f"no interval calibration for {missing}; run the model comparison again (`make run`)")
    paths = forecast_paths(frame, config, names)
    # The same ensemble formula as in the backtest, on the members' paths side by side.
    wide = pd.concat([paths[m].drop(columns="ds").add_prefix(f"{m}-").rename(columns={f"{m}-mean": m})
                      for m in members], axis=1)
    combined = bt.add_ensemble(wide, members)
    paths["ensemble"] = pd.DataFrame({"ds": paths[members[0]]["ds"], "mean": combined["ensemble"],
                                      **{c: combined[f"ensemble-{c}"] for c in interval_columns()}})
    paths = {name: calibration.calibrate_columns(path, "mean", calibrations[name]) for name, path in paths.items()}
    return {
        name: {
            "members": members if name == "ensemble" else None,
            "cv": metrics[name],
            "calibration": {str(lv): c.to_dict() for lv, c in calibrations[name].items()},
            "forecast": {"ds": [d.isoformat() for d in path["ds"]],
                         **{c: [float(x) for x in path[c]] for c in ["mean", *interval_columns()]}},
        }
        for name, path in paths.items()
    }


def final_artifact(frame: pd.DataFrame, config: ComparisonConfig, record: dict, *, series_id: str,
                   data_sha256: str, parameters: dict[str, str], created_utc: str) -> dict:
    """The forecast artifact of a finished comparison: the selected model, its ensemble members
    and the ensemble fitted on all of ``frame`` (:func:`artifact_models`) with the selection
    ``record``'s metrics and calibration, and the provenance given (``parameters``: the run's
    settings; ``data_sha256``: what the data was)."""
    return {
        "schema_version": artifact.SCHEMA_VERSION,
        "created_utc": created_utc,
        "series_id": series_id,
        "frequency": config.freq,
        "training_start": frame["ds"].iloc[0].isoformat(),
        "training_end": frame["ds"].iloc[-1].isoformat(),
        "data_sha256": data_sha256,
        "selected_model": record["selected"],
        "models": artifact_models(frame, config, record["selected"], record["members"], record["metrics"],
                                  calibration.from_record(record.get("calibration"))),
        "interval_calibration": calibration_metadata(record),
        "evaluation_cutoffs": record["evaluation_cutoffs"],
        "parameters": {**parameters, "comparison": config_dict(config)},
        "packages": package_versions(),
        "git_commit": git_commit(),
    }


def frame_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 of a series frame as CSV text (every column, in order): the data a model was fitted
    on when it came from the warehouse rather than a file."""
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


METRICS = ["rmse", "mae", "mape", "mase", "coverage_80", "coverage_95", "raw_coverage_80", "raw_coverage_95",
           "calibrated_coverage_80", "calibrated_coverage_95", "directional_accuracy"]


def fold_metrics(comparison: Comparison) -> list[dict]:
    """Every model's metrics on each fold, earliest cutoff first: ``fold`` (1 is the earliest),
    ``cutoff``, ``role`` (selection or evaluation) and ``metrics`` ``{model: {metric: value}}``
    (the metrics of :data:`METRICS`; a value a fold does not have is left out)."""
    roles = comparison.forecasts[["cutoff", "role"]].drop_duplicates().set_index("cutoff")["role"]
    folds = []
    for number, (cutoff, part) in enumerate(comparison.scores.dropna(subset=["value"]).groupby("cutoff"), start=1):
        metrics: dict[str, dict[str, float]] = {}
        for model, metric, value in part[["model", "metric", "value"]].itertuples(index=False):
            metrics.setdefault(model, {})[metric] = float(value)
        folds.append({"fold": number, "cutoff": cutoff.isoformat(), "role": roles[cutoff], "metrics": metrics})
    return folds


def selection_record(comparison: Comparison) -> dict:
    """What the final fit needs: the config, the choice, every model's evaluation metrics
    (``coverage_*`` of the served intervals, ``calibrated_coverage_*`` of the conformal ones,
    ``raw_coverage_*`` of the models' own) and the interval calibration to serve; and, for the
    tracking store (:mod:`helpers.lifecycle.tracking`), every model's metrics per fold (``folds``)."""
    board = bt.leaderboard(comparison.scores, comparison.evaluation_cutoffs)
    return {
        "config": config_dict(comparison.config), "selected": comparison.selected, "members": comparison.members,
        "metrics": {m: {k: float(board.loc[m, k]) for k in METRICS} for m in board.index},
        "calibration": calibration.to_record(comparison.calibrations),
        "selection_cutoffs": [c.isoformat() for c in comparison.selection_cutoffs],
        "evaluation_cutoffs": [c.isoformat() for c in comparison.evaluation_cutoffs],
        "folds": fold_metrics(comparison),
    }


def calibration_metadata(record: dict) -> dict:
    """The artifact's description of its interval calibration, from a selection record."""
    return {"method": calibration.METHOD, "reference": calibration.REFERENCE,
            "learnt_on": "every backtest fold", "selection_cutoffs": record["selection_cutoffs"],
            "levels": list(DEFAULT_LEVELS)}


def write_selection(comparison: Comparison, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(selection_record(comparison), indent=1))
    return path


def read_selection(path: str | Path) -> tuple[ComparisonConfig, dict]:
    record = json.loads(Path(path).read_text())
    config = record["config"]
    config = ComparisonConfig(**{**config, "season_lengths": tuple(config["season_lengths"]),
                                 "models": tuple(config["models"])})
    return config, record


def config_dict(config: ComparisonConfig) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}


def in_sample_residuals(frame: pd.DataFrame, config: ComparisonConfig, name: str) -> pd.Series:
    """One-step-ahead in-sample residuals of ``name`` fitted on all of ``frame``."""
    frame = config.with_calendar(frame)
    (model,) = config.build([name], frame)
    try:
        fitted = model.fitted_values(frame)
    except NotImplementedError as exc:
        raise ValueError(f"no in-sample residuals for {name}: {exc}") from None
    return pd.Series(frame["y"].to_numpy(dtype=float) - fitted, index=frame["ds"].to_numpy(), name=name).dropna()


#: Calibrated coverage this far below nominal (as a share) is called out in the justification.
SHORTFALL = 0.05


def justification(comparison: Comparison) -> str:
    """The model choice in words, built from the evaluation-fold numbers."""
    board = comparison.leaderboard()
    evaluation = bt.leaderboard(comparison.scores, comparison.evaluation_cutoffs)  # with the raw coverage
    chosen, base = comparison.selected, "seasonal_naive"
    baselines = [m for m in ("naive", "seasonal_naive", "window_average") if m in board.index]
    best_baseline = min(baselines, key=lambda m: board.loc[m, "rmse"])
    ratio = board.loc[chosen, "rmse"] / board.loc[base, "rmse"]
    margin = 1 - board.loc[chosen, "rmse"] / board.loc[best_baseline, "rmse"]
    text = [
        f"**{chosen}** was chosen because it had the lowest RMSE on the {len(comparison.selection_cutoffs)} "
        f"selection folds among the models that need nothing about the future but its dates (and, for "
        f"calendar models, its public holidays). On the "
        f"{len(comparison.evaluation_cutoffs)} later evaluation folds, which played no part in the choice, its RMSE is "
        f"{board.loc[chosen, 'rmse']:.3g} against {board.loc[base, 'rmse']:.3g} for seasonal naive "
        f"(ratio {ratio:.3f}); its margin over the best baseline ({best_baseline}) is {margin:+.1%}.",
        f"Its served 80% and 95% intervals covered {board.loc[chosen, 'served coverage_80']:.0%} and "
        f"{board.loc[chosen, 'served coverage_95']:.0%} of the actual values (its own intervals: "
        f"{evaluation.loc[chosen, 'raw_coverage_80']:.0%} and {evaluation.loc[chosen, 'raw_coverage_95']:.0%}; "
        f"calibrated on the folds finished before each cutoff: {evaluation.loc[chosen, 'calibrated_coverage_80']:.0%} "
        f"and {evaluation.loc[chosen, 'calibrated_coverage_95']:.0%}); it got the direction of change right "
        f"{board.loc[chosen, 'directional_accuracy']:.0%} of the time; a fit and forecast took a median "
        f"{board.loc[chosen, 'median fit+predict s']:.2f} s.",
        f"The ensemble of {', '.join(comparison.members)} reached RMSE {board.loc['ensemble', 'rmse']:.3g} "
        f"(ratio {board.loc['ensemble', 'rmse'] / board.loc[base, 'rmse']:.3f}).",
    ]
    if ratio > 0.9:
        text.append("The selected model is **not** 10% better than seasonal naive on this series: the simple "
                    "weekly benchmark is hard to beat without outside information.")
    off = [lv for lv in DEFAULT_LEVELS if abs(board.loc[chosen, f"served coverage_{lv}"] - lv / 100) > SHORTFALL]
    if off:
        selection_rmse = bt.leaderboard(comparison.scores, comparison.selection_cutoffs).loc[chosen, "rmse"]
        text.append(f"Its served {' and '.join(f'{lv}%' for lv in off)} intervals **do not cover what they "
                    f"claim** (within {SHORTFALL:.0%}) on the evaluation folds. Its RMSE was {selection_rmse:.3g} on "
                    f"the selection folds against {board.loc[chosen, 'rmse']:.3g} on the evaluation folds: when later "
                    "errors are not like the earlier ones (another season, for example), no interval learnt from "
                    "the past holds its level, and conformal calibration assumes they are alike. Read the bands "
                    "with the coverage table below.")
    if comparison.conditional:
        best = min(comparison.conditional, key=lambda m: board.loc[m, "rmse"])
        text.append(f"With the observed temperature of the forecast days, {best} reaches RMSE "
                    f"{board.loc[best, 'rmse']:.3g} (ratio {board.loc[best, 'rmse'] / board.loc[base, 'rmse']:.3f}); "
                    "this is a conditional forecast, only as good as a temperature forecast would be, so it is "
                    "reported but not deployed.")
    return "\n\n".join(text)


def plot_last_fold(comparison: Comparison, models: list[str] | None = None):
    """Forecast against actual on the last fold, one panel per model, served 80% and 95% bands."""
    from plotly.subplots import make_subplots

    models = models or [m for m in comparison.leaderboard().index]
    last = comparison.forecasts[comparison.forecasts["cutoff"] == comparison.forecasts["cutoff"].max()]
    fig = make_subplots(rows=len(models), cols=1, shared_xaxes=True, subplot_titles=models, vertical_spacing=0.02)
    for i, m in enumerate(models, start=1):
        for lv, opacity in ((95, 0.15), (80, 0.3)):
            fig.add_scatter(x=list(last["ds"]) + list(last["ds"][::-1]),
                            y=list(last[f"{m}-hi-{lv}"]) + list(last[f"{m}-lo-{lv}"][::-1]), fill="toself",
                            line=dict(width=0), fillcolor=f"rgba(31,119,180,{opacity})", showlegend=False,
                            hoverinfo="skip", row=i, col=1)
        fig.add_scatter(x=last["ds"], y=last[m], line=dict(color="#1f77b4"), showlegend=False, row=i, col=1)
        fig.add_scatter(x=last["ds"], y=last["y"], line=dict(color="black", dash="dot"), showlegend=False, row=i, col=1)
    fig.update_layout(title="Last fold: forecast (blue, served 80/95% bands) against actual (dotted)",
                      height=170 * len(models) + 80, margin=dict(t=70, b=30, l=60, r=20))
    return fig


def plot_error_distributions(comparison: Comparison):
    """Forecast errors (actual - forecast) per model on the evaluation folds."""
    import plotly.graph_objects as go

    evaluation = comparison.forecasts[comparison.forecasts["role"] == "evaluation"]
    fig = go.Figure()
    for m in comparison.leaderboard().index:
        fig.add_box(y=evaluation["y"] - evaluation[m], name=m, boxmean=True)
    fig.update_layout(title="Forecast errors on the evaluation folds", yaxis_title="actual - forecast",
                      showlegend=False, height=400, margin=dict(t=50, b=80, l=60, r=20))
    return fig


def backtest_residuals(comparison: Comparison, name: str) -> pd.Series:
    """Out-of-sample errors (actual - forecast) of ``name`` over all folds, in time order."""
    frame = comparison.forecasts.sort_values(["cutoff", "ds"])
    return pd.Series((frame["y"] - frame[name]).to_numpy(), index=frame["ds"].to_numpy(), name=name)


def fold_table(comparison: Comparison, metric: str = "rmse") -> pd.DataFrame:
    """``metric`` per fold (rows: cutoff and role) and model (columns)."""
    roles = comparison.forecasts.groupby("cutoff")["role"].first()
    table = comparison.scores[comparison.scores["metric"] == metric].pivot(index="cutoff", columns="model",
                                                                             values="value")
    table.insert(0, "role", roles)
    return table


def seasonal_errors(comparison: Comparison, workday: pd.Series | None) -> pd.DataFrame:
    """Segment RMSE on the evaluation folds."""
    evaluation = comparison.forecasts[comparison.forecasts["role"] == "evaluation"]
    models = [m for m in dict.fromkeys([comparison.selected, "ensemble", "seasonal_naive"])
              if m in evaluation.columns]
    return bt.segment_errors(evaluation, models, workday, comparison.config.hemisphere)

