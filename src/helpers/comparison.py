"""The model comparison and the final fit, as the notebook and the pipeline call them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from helpers import backtest as bt
from helpers.forecasting import DEFAULT_LEVELS, Forecaster, interval_columns, model_catalog
from helpers.hypotheses import DEGREE_DAY_BASE


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

    @classmethod
    def parse(cls, grain: str, horizon: int, n_folds: int, min_train: int, models: str, max_horizon: int) -> ComparisonConfig:
        seasons = {"daily": ("1D", (7,)), "hourly": ("1h", (24, 168))}
        if grain not in seasons:
            raise ValueError(f"grain must be 'daily' or 'hourly', got {grain!r}")
        names = tuple(m.strip() for m in models.split(",") if m.strip())
        if n_folds < 2:
            raise ValueError("n_folds must be at least 2 (selection and evaluation)")
        freq, season_lengths = seasons[grain]
        return cls(grain, freq, season_lengths, horizon, n_folds, n_folds // 2, min_train, names,
                   max_horizon=max_horizon)


@dataclass
class Comparison:
    config: ComparisonConfig
    forecasts: pd.DataFrame
    timings: pd.DataFrame
    scores: pd.DataFrame
    selected: str
    members: list[str]
    candidates: list[str]
    conditional: list[str] = field(default_factory=list)
    calendar: list[str] = field(default_factory=list)

    @property
    def selection_cutoffs(self) -> list[pd.Timestamp]:
        return sorted(self.forecasts.loc[self.forecasts["role"] == "selection", "cutoff"].unique())

    @property
    def evaluation_cutoffs(self) -> list[pd.Timestamp]:
        return sorted(self.forecasts.loc[self.forecasts["role"] == "evaluation", "cutoff"].unique())

    def leaderboard(self) -> pd.DataFrame:
        """Evaluation-fold metrics per model, with fit time and the model's role."""
        board = bt.leaderboard(self.scores, self.evaluation_cutoffs)
        board["median fit+predict s"] = self.timings.groupby("model")["seconds"].median()
        kinds = {**{m: "conditional (observed future temperature)" for m in self.conditional},
                 **{m: "calendar regressor (work-day flag)" for m in self.calendar}, "ensemble": "ensemble"}
        board["kind"] = [kinds.get(m, "univariate") for m in board.index]
        return board


def prepare_frame(view: pd.DataFrame) -> pd.DataFrame:
    """``load_series`` output with degree-days; long gaps (still missing) are not allowed."""
    if view["y"].isna().any():
        raise ValueError(f"{int(view['y'].isna().sum())} steps are still missing after the short-gap fill; "
                         "the comparison needs a complete series (raise max_fill_steps or trim the series)")
    return view.assign(degree_days=(view["temperature"] - DEGREE_DAY_BASE).abs())


def run_comparison(frame: pd.DataFrame, config: ComparisonConfig) -> Comparison:
    """Backtest every model, choose on the selection folds, add the ensemble, score everything."""
    has_temperature = bool(frame["temperature"].notna().all())
    has_workday = bool(frame["workday"].notna().all())
    models = model_catalog(config.season_lengths, config.horizon, config.models, has_temperature, has_workday)
    cutoffs = bt.make_cutoffs(frame["ds"], config.horizon, config.n_folds, config.min_train)
    forecasts, timings = bt.backtest(frame, models, config.horizon, cutoffs)
    forecasts = bt.assign_roles(forecasts, config.n_selection)
    scores = bt.score(forecasts, frame, config.season_lengths[0])
    # Production candidates need nothing about the future but its dates.
    candidates = [m.name for m in models if not m.covariates]
    selected, members = bt.select(scores, sorted(forecasts.loc[forecasts["role"] == "selection", "cutoff"].unique()),
                                  candidates, config.n_members)
    forecasts = bt.add_ensemble(forecasts, members)
    scores = bt.score(forecasts, frame, config.season_lengths[0])
    return Comparison(config, forecasts, timings, scores, selected, members, candidates,
                      conditional=[m.name for m in models if m.conditional],
                      calendar=[m.name for m in models if m.covariates and not m.conditional])


def accuracy_summary(comparison: Comparison) -> pd.DataFrame:
    """RMSE ratios against seasonal naive on the evaluation folds."""
    board = comparison.leaderboard()
    baseline = float(board.loc["seasonal_naive", "rmse"])
    univariate = [m for m in board.index if m in comparison.candidates or m == "ensemble"]
    rows = [("selected model (chosen on selection folds)", comparison.selected),
            ("ensemble", "ensemble"),
            ("best univariate model on evaluation folds", univariate[0])]
    if comparison.conditional:
        best_conditional = [m for m in board.index if m in comparison.conditional][0]
        rows.append(("best conditional model (uses observed temperature)", best_conditional))
    return pd.DataFrame([{"what": what, "model": m, "rmse": float(board.loc[m, "rmse"]),
                          "seasonal naive rmse": baseline, "ratio to seasonal naive": float(board.loc[m, "rmse"]) / baseline}
                         for what, m in rows])


def forecast_paths(frame: pd.DataFrame, config: ComparisonConfig, names: list[str],
                   level=DEFAULT_LEVELS) -> dict[str, pd.DataFrame]:
    """Fit each named (univariate) model on all of ``frame`` and forecast ``max_horizon`` steps."""
    models: list[Forecaster] = model_catalog(config.season_lengths, config.max_horizon, names, False, False)
    start = frame["ds"].iloc[-1] + pd.tseries.frequencies.to_offset(config.freq)
    future = pd.DataFrame({"ds": pd.date_range(start, periods=config.max_horizon, freq=config.freq)})
    return {m.name: m.fit(frame).predict(future, level).assign(ds=future["ds"]) for m in models}


def artifact_models(frame: pd.DataFrame, comparison: Comparison) -> dict[str, dict]:
    """The selected model, the ensemble members and the ensemble: paths plus CV metrics."""
    names = list(dict.fromkeys([comparison.selected, *comparison.members]))
    paths = forecast_paths(frame, comparison.config, names)
    paths["ensemble"] = sum(paths[m][["mean", *interval_columns()]] for m in comparison.members) / len(comparison.members)
    paths["ensemble"]["ds"] = paths[comparison.members[0]]["ds"]
    board = comparison.leaderboard()
    out = {}
    for name, path in paths.items():
        metrics = board.loc[name, ["rmse", "mae", "mape", "mase", "coverage_80", "coverage_95", "directional_accuracy"]]
        out[name] = {
            "members": comparison.members if name == "ensemble" else None,
            "cv": {k: float(v) for k, v in metrics.items()},
            "forecast": {"ds": [d.isoformat() for d in path["ds"]],
                         **{c: [float(x) for x in path[c]] for c in ["mean", *interval_columns()]}},
        }
    return out


def config_dict(config: ComparisonConfig) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}


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
    models = [comparison.selected, "ensemble", "seasonal_naive"]
    return bt.segment_errors(evaluation, list(dict.fromkeys(models)), workday)

