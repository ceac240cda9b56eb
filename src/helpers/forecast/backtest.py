"""Rolling-origin cross-validation, metrics, model selection and the ensemble.

Folds use an expanding window: for each cutoff the model is fitted on everything up to and
including the cutoff and forecasts the next ``h`` steps. Cutoffs are spread evenly over the
back part of the series, so several seasons are evaluated.

Selection and evaluation are kept apart: the earlier folds (``role == 'selection'``) choose
the model and the ensemble members; the later folds (``role == 'evaluation'``) only score
them. Nothing measured on the evaluation folds feeds back into a choice.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from helpers.forecast import cv_cache
from helpers.forecast.cv_cache import FoldCache
from helpers.forecast.models import DEFAULT_LEVELS, Forecaster, interval_columns

#: Meteorological seasons by month in the southern hemisphere; the northern ones are six months on.
_SOUTH = {12: "summer", 1: "summer", 2: "summer", 3: "autumn", 4: "autumn", 5: "autumn",
          6: "winter", 7: "winter", 8: "winter", 9: "spring", 10: "spring", 11: "spring"}
SEASONS_BY_MONTH = {"south": _SOUTH, "north": {(m + 5) % 12 + 1: s for m, s in _SOUTH.items()}}


def season_labels(ds: pd.Series, hemisphere: str | None) -> pd.Series:
    """The meteorological season of each timestamp in ``hemisphere`` (``south`` or ``north``),
    or its calendar quarter (``Q1``..``Q4``) when no hemisphere is set."""
    if hemisphere is None:
        return "Q" + ds.dt.quarter.astype(str)
    if hemisphere not in SEASONS_BY_MONTH:
        raise ValueError(f"hemisphere must be one of {sorted(SEASONS_BY_MONTH)} or None, got {hemisphere!r}")
    return ds.dt.month.map(SEASONS_BY_MONTH[hemisphere])


def make_cutoffs(ds: pd.Series, h: int, n_folds: int, min_train: int) -> list[pd.Timestamp]:
    """``n_folds`` cutoffs from ``min_train`` steps in to ``h`` steps before the end, evenly spaced."""
    n = len(ds)
    last = n - h - 1
    if n_folds < 1 or min_train - 1 > last:
        raise ValueError(f"{n} points cannot hold {n_folds} folds of horizon {h} after {min_train} training points")
    positions = np.linspace(min_train - 1, last, n_folds).round().astype(int)
    return [pd.Timestamp(ds.iloc[p]) for p in np.unique(positions)]


def usable_cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _fit_predict(model: Forecaster, train: pd.DataFrame, future: pd.DataFrame,
                 level: Sequence[int]) -> tuple[pd.DataFrame, float]:
    start = time.perf_counter()
    predicted = model.fit(train).predict(future, level)
    return predicted[["mean", *interval_columns(level)]].reset_index(drop=True), time.perf_counter() - start


_CALLS: list[tuple] = []  # what forked workers fit: set before the fork, read by index in the worker


def _fit_call(index: int) -> tuple[pd.DataFrame, float]:
    return _fit_predict(*_CALLS[index])


def _worker_start() -> None:
    """A forked worker: one BLAS thread (a worker per core already: more would only contend), and
    SIGTERM's default action. The pool stops its workers with SIGTERM; a handler the parent had
    set (the pipeline's, which stops a build cleanly) would make each worker print a traceback."""
    from threadpoolctl import threadpool_limits

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threadpool_limits(1)


def _in_processes(calls: list[tuple], workers: int) -> list[tuple[pd.DataFrame, float]]:
    """``_fit_predict`` of each call in ``workers`` processes, results in call order.

    Forked where the platform can fork: a worker starts with this process's imports and objects,
    so it costs milliseconds and the models need not be pickled (only their forecasts come back).
    Elsewhere joblib's loky processes, which import everything again (seconds each).
    """
    if "fork" in multiprocessing.get_all_start_methods():
        global _CALLS
        _CALLS = calls
        try:
            with multiprocessing.get_context("fork").Pool(workers, initializer=_worker_start) as pool:
                return pool.map(_fit_call, range(len(calls)), chunksize=1)
        finally:
            _CALLS = []
    from joblib import Parallel, delayed

    return Parallel(n_jobs=workers, backend="loky", batch_size=1)(delayed(_fit_predict)(*call) for call in calls)


def backtest(frame: pd.DataFrame, models: Sequence[Forecaster], h: int, cutoffs: Sequence[pd.Timestamp],
             level: Sequence[int] = DEFAULT_LEVELS, *, jobs: int = 1,
             cache: FoldCache | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecasts of every model at every cutoff, and the fit+predict time of each.

    Args:
        frame: ``unique_id, ds, y`` plus covariates, on a complete grid (no missing ``y``).
        jobs: processes fitting (model, fold) pairs side by side; 0 is one per usable core.
            The forecasts are the same for any value (every fit is seeded and independent).
        cache: folds found there are not fitted again; the others are stored in it.

    Returns:
        ``(forecasts, timings)``: forecasts has ``unique_id, ds, cutoff, y`` and per model a
        mean column and ``<model>-lo-<level>`` / ``<model>-hi-<level>`` columns; timings has
        ``model, cutoff, seconds, cached`` (a cached fold's seconds are those of its first fit).
    """
    if frame["y"].isna().any():
        raise ValueError("backtest needs a complete series; fill or drop the missing values first")
    if jobs < 0:
        raise ValueError(f"jobs must be 0 (one per core) or a positive number of processes, got {jobs}")
    folds = {}
    for cutoff in cutoffs:
        train = frame[frame["ds"] <= cutoff]
        future = frame[frame["ds"] > cutoff].head(h)
        digest = cv_cache.data_digest(pd.concat([train, future])) if cache else ""
        folds[cutoff] = train, future.drop(columns="y").reset_index(drop=True), future, digest
    results: dict[tuple[int, pd.Timestamp], tuple[pd.DataFrame, float, bool]] = {}
    pending, keys = [], {}
    for cutoff in cutoffs:
        for i, model in enumerate(models):
            if cache is not None:
                keys[i, cutoff] = cache.key(model, cutoff, folds[cutoff][3], level)
                hit = cache.get(model, keys[i, cutoff], len(folds[cutoff][1]))
                if hit is not None:
                    results[i, cutoff] = (*hit, True)
                    continue
            pending.append((i, cutoff))
    # The dear fits first, so the cheap ones fill the gaps at the end.
    pending.sort(key=lambda pair: -models[pair[0]].cost)
    workers = min(usable_cores() if jobs == 0 else jobs, len(pending))
    calls = [(models[i], folds[cutoff][0], folds[cutoff][1], level) for i, cutoff in pending]
    done = _in_processes(calls, workers) if workers > 1 else [_fit_predict(*call) for call in calls]
    for (i, cutoff), (predicted, seconds) in zip(pending, done):
        results[i, cutoff] = predicted, seconds, False
        if cache is not None:
            cache.put(models[i], keys[i, cutoff], predicted, seconds)
    pieces, timings = [], []
    for cutoff in cutoffs:
        future = folds[cutoff][2]
        fold = future[["unique_id", "ds", "y"]].assign(cutoff=cutoff).reset_index(drop=True)
        for i, model in enumerate(models):
            predicted, seconds, cached = results[i, cutoff]
            timings.append({"model": model.name, "cutoff": cutoff, "seconds": seconds, "cached": cached})
            fold[model.name] = predicted["mean"].to_numpy()
            for column in interval_columns(level):
                fold[f"{model.name}-{column}"] = predicted[column].to_numpy()
        pieces.append(fold)
    forecasts = pd.concat(pieces, ignore_index=True)
    return forecasts[["unique_id", "ds", "cutoff", "y", *[c for c in forecasts if c not in
                                                           ("unique_id", "ds", "cutoff", "y")]]], pd.DataFrame(timings)


def model_names(forecasts: pd.DataFrame) -> list[str]:
    return [c for c in forecasts.columns if c not in ("unique_id", "ds", "cutoff", "y", "role") and "-lo-" not in c
            and "-hi-" not in c]


def add_ensemble(forecasts: pd.DataFrame, members: Sequence[str], name: str = "ensemble",
                 weights: Sequence[float] | None = None, level: Sequence[int] = DEFAULT_LEVELS) -> pd.DataFrame:
    """Weighted mean of member forecasts (equal weights by default); bounds averaged likewise.

    Averaging the members' bounds is an approximation to the ensemble's interval; its
    coverage is measured like every other model's.
    """
    w = np.full(len(members), 1 / len(members)) if weights is None else np.asarray(weights) / np.sum(weights)
    out = forecasts.copy()
    for suffix in ["", *[f"-{c}" for c in interval_columns(level)]]:
        out[f"{name}{suffix}"] = sum(wi * forecasts[f"{m}{suffix}"] for wi, m in zip(w, members))
    return out


def assign_roles(forecasts: pd.DataFrame, n_selection: int) -> pd.DataFrame:
    """Mark the first ``n_selection`` cutoffs ``selection`` and the rest ``evaluation``."""
    cutoffs = sorted(forecasts["cutoff"].unique())
    if not 0 < n_selection < len(cutoffs):
        raise ValueError(f"need selection and evaluation folds; {len(cutoffs)} folds, n_selection={n_selection}")
    chosen = set(cutoffs[:n_selection])
    return forecasts.assign(role=np.where(forecasts["cutoff"].isin(chosen), "selection", "evaluation"))


def directional_accuracy(forecasts: pd.DataFrame, frame: pd.DataFrame, models: Sequence[str]) -> pd.Series:
    """Share of steps where the forecast moved in the same direction as the actual value,
    both measured from the previous actual value (the last training value for step 1)."""
    previous = forecasts.groupby("cutoff")["y"].shift(1)
    last_train = forecasts["cutoff"].map(frame.set_index("ds")["y"])
    previous = previous.fillna(last_train)
    actual = np.sign(forecasts["y"] - previous)
    return pd.Series({m: float((np.sign(forecasts[m] - previous) == actual).mean()) for m in models})


def _mean(values: np.ndarray) -> np.ndarray:
    """Column means over the finite values (NaN for a column with none), without warnings."""
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(finite, values, 0.0).sum(axis=0) / count, np.nan)


def score(forecasts: pd.DataFrame, frame: pd.DataFrame, season_length: int,
          level: Sequence[int] = DEFAULT_LEVELS) -> pd.DataFrame:
    """MAE, RMSE, MAPE (%), MASE, directional accuracy and interval coverage per model and fold.

    The definitions of ``utilsforecast.losses`` (the tests check them against it), on arrays:
    MAPE leaves out steps whose actual value is 0; MASE scales by the in-sample seasonal-naive
    MAE of each fold's training data (Hyndman & Koehler, 2006), NaN when that is 0.
    """
    models = model_names(forecasts)
    history = frame.set_index("ds")["y"]
    long, direction = [], []
    for cutoff, fold in forecasts.groupby("cutoff", sort=True):
        y = fold["y"].to_numpy(dtype=float)
        predicted = fold[models].to_numpy(dtype=float)
        error = y[:, None] - predicted
        train = history[history.index <= cutoff].to_numpy(dtype=float)
        naive = _mean(np.abs(train[season_length:] - train[:-season_length])[:, None])[0] if len(train) > season_length \
            else np.nan
        actual = np.where(y == 0, np.nan, np.abs(y))
        mae = _mean(np.abs(error))
        metrics = {"mae": mae, "rmse": np.sqrt(_mean(error ** 2)),
                   "mape": 100 * _mean(np.abs(error) / actual[:, None]),
                   "mase": mae / naive if naive else np.full(len(models), np.nan)}
        for lv in level:
            lo = fold[[f"{m}-lo-{lv}" for m in models]].to_numpy(dtype=float)
            hi = fold[[f"{m}-hi-{lv}" for m in models]].to_numpy(dtype=float)
            metrics[f"coverage_{lv}"] = ((y[:, None] >= lo) & (y[:, None] <= hi)).mean(axis=0)
        long += [{"cutoff": cutoff, "model": m, "metric": metric, "value": float(values[j])}
                 for metric, values in metrics.items() for j, m in enumerate(models)]
        direction += [{"cutoff": cutoff, "model": m, "metric": "directional_accuracy", "value": v}
                      for m, v in directional_accuracy(fold, frame, models).items()]
    return pd.DataFrame(long + direction)


def leaderboard(scores: pd.DataFrame, cutoffs: Sequence[pd.Timestamp] | None = None) -> pd.DataFrame:
    """Mean of each metric over the given folds (all folds by default), best RMSE first.

    RMSE over folds is the root of the mean squared error, not the mean of fold RMSEs.
    """
    part = scores if cutoffs is None else scores[scores["cutoff"].isin(cutoffs)]
    wide = part.pivot_table(index="model", columns="metric", values="value", aggfunc="mean")
    rmse = part[part["metric"] == "rmse"].assign(sq=lambda d: d["value"] ** 2).groupby("model")["sq"].mean() ** 0.5
    wide["rmse"] = rmse
    return wide.sort_values("rmse")


def select(scores: pd.DataFrame, selection_cutoffs: Sequence[pd.Timestamp], candidates: Sequence[str],
           n_members: int = 3) -> tuple[str, list[str]]:
    """Best candidate by RMSE on the selection folds, and the ensemble's members (top ``n_members``)."""
    board = leaderboard(scores, selection_cutoffs)
    ranked = [m for m in board.index if m in candidates]
    if not ranked:
        raise ValueError(f"none of the candidates {list(candidates)} was backtested")
    return ranked[0], ranked[:n_members]


def segment_errors(forecasts: pd.DataFrame, models: Sequence[str], workday: pd.Series | None = None,
                   hemisphere: str | None = None) -> pd.DataFrame:
    """RMSE per model by season (by quarter without a ``hemisphere``) and by work day vs other day."""
    frame = forecasts.assign(season=season_labels(forecasts["ds"], hemisphere))
    if workday is not None:
        frame["day type"] = frame["ds"].dt.normalize().map(workday).map({1.0: "work day", 0.0: "non-work day"})
    rows = []
    for segment in [c for c in ("season", "day type") if c in frame]:
        for value, part in frame.groupby(segment):
            for m in models:
                rows.append({"segment": segment, "value": value, "model": m, "n": len(part),
                             "rmse": float(np.sqrt(((part["y"] - part[m]) ** 2).mean()))})
    return pd.DataFrame(rows).pivot_table(index=["segment", "value", "n"], columns="model", values="rmse").reset_index()


def ljung_box(residuals: pd.Series, lags: Sequence[int]) -> pd.DataFrame:
    """Ljung-Box test of residual autocorrelation at each lag (H0: no autocorrelation)."""
    from statsmodels.stats.diagnostic import acorr_ljungbox  # scipy.stats: 1-2 s to import, only needed here

    return acorr_ljungbox(residuals.dropna(), lags=list(lags)).rename_axis("lag").reset_index()


def learning_curve(frame: pd.DataFrame, make_model, h: int, cutoff: pd.Timestamp,
                   train_lengths: Sequence[int]) -> pd.DataFrame:
    """RMSE of one model forecasting the same ``h`` steps after ``cutoff`` from training windows
    of different lengths (the most recent ``n`` points)."""
    history = frame[frame["ds"] <= cutoff]
    future = frame[frame["ds"] > cutoff].head(h).reset_index(drop=True)
    rows = []
    for n in train_lengths:
        if n > len(history):
            continue
        predicted = make_model().fit(history.tail(n)).predict(future.drop(columns="y"))
        rows.append({"train_length": n, "rmse": float(np.sqrt(((future["y"] - predicted["mean"]) ** 2).mean()))})
    return pd.DataFrame(rows)
