"""Conformal calibration of forecast intervals, learnt on the selection folds only.

Each model's ``level``% interval ``[lo, hi]`` around its forecast ``mean`` is stretched or
shrunk about the mean by one factor per model and level, the smallest factor that would have
covered ``level``% of the selection folds' actual values: split conformal prediction with a
score normalised by the model's own interval (Angelopoulos & Bates 2021, section 2.3,
"conformalizing scalar uncertainty estimates"; the locally weighted intervals of Lei et al.
2018)::

    s_i = max((mean_i - y_i) / (mean_i - lo_i), (y_i - mean_i) / (hi_i - mean_i))
    k   = ceil((n + 1) * level / 100)
    q   = s_(k), the k-th smallest of the n selection-fold scores
    lo' = mean - q * (mean - lo),    hi' = mean + q * (hi - mean)

``s_i <= 1`` exactly when ``y_i`` lies in ``[lo_i, hi_i]``, and ``s_i <= q`` exactly when it lies
in the rescaled interval; when a new point's score and the ``n`` selection scores are
exchangeable, ``P(y in [lo', hi']) >= level / 100`` (Angelopoulos & Bates 2021, Theorem 1).
One factor serves every horizon step, so the interval keeps the model's own widening with
the horizon: a few selection folds hold too few errors per step for one factor per step.

Degenerate cases:

- ``k > n`` (fewer than ``level / (100 - level)`` points: 4 at 80%, 19 at 95%): no
  finite-sample guarantee; ``q`` is the largest score and the result says ``finite_sample=False``.
- A zero half-width (``hi == mean``, or a bound on the wrong side of the mean, counted as
  zero): the score on that side is 0 when ``y`` is not beyond the mean and ``+inf`` when it is,
  with no division by zero. If ``q`` is then infinite, no factor can widen the model's
  interval enough, and the interval becomes ``mean -/+ q_abs`` with ``q_abs`` the same
  conformal quantile of ``|y - mean|`` (the absolute-residual score of split conformal
  regression, Lei et al. 2018), ``method='absolute'``.
- Nesting: the factors of two levels are learnt separately and could make the wider level's
  interval the narrower one; :func:`calibrate_bands` widens the higher level to contain the
  lower one where they would cross.

Which points calibrate which fold (:func:`calibrate_by_fold`): a fold's interval is calibrated on
the folds whose actual values were all known at its cutoff, and never fewer than the selection
folds: the evaluation folds are calibrated as they would have been in production, each on every
earlier finished fold, and the artifact on all folds. The guarantee rests on exchangeability; when
later errors are larger than earlier ones (another season), the calibrated interval covers less
than nominal, and may be further from nominal than the model's own interval. So the interval
served (:func:`served_calibration`) is chosen the same way, from the past only: the calibrated one,
unless on the finished folds, each calibrated on the folds finished before it, the model's own
interval came closer to the nominal level (``method='model'``, factor 1). The comparison report
gives the coverage of all three (model's own, calibrated, served) on the evaluation folds.

References:
    Angelopoulos, A. N. & Bates, S. (2021). A gentle introduction to conformal prediction and
    distribution-free uncertainty quantification. arXiv:2107.07511.
    Lei, J., G'Sell, M., Rinaldo, A., Tibshirani, R. J. & Wasserman, L. (2018).
    Distribution-free predictive inference for regression. JASA 113(523), 1094-1111.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from helpers.forecast.models import DEFAULT_LEVELS

Method = Literal["scaled", "absolute", "model"]
Calibrations = Mapping[str, Mapping[int, "IntervalCalibration"]]

METHOD = ("split conformal on the finished backtest folds (at least the selection folds), one factor per model and "
          "level scaling the model's own interval half-widths about the mean (absolute-residual fallback for "
          "zero-width intervals); the model's own interval is kept where, on the finished folds, it came closer "
          "to the nominal coverage")
REFERENCE = ("Angelopoulos & Bates (2021), A gentle introduction to conformal prediction, section 2.3; "
             "Lei et al. (2018), Distribution-free predictive inference for regression")


@dataclass(frozen=True)
class IntervalCalibration:
    """One model's calibration at one level.

    ``factor`` multiplies the half-widths (``method='scaled'``), is the half-width itself, in
    units of ``y`` (``method='absolute'``), or is 1 (``method='model'``: the model's own
    interval, kept); ``n`` calibration points; ``rank`` is
    ``k = ceil((n + 1) level / 100)``; ``finite_sample`` is ``rank <= n``.
    """

    level: int
    method: Method
    factor: float
    n: int
    rank: int
    finite_sample: bool

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> IntervalCalibration:
        return cls(level=int(values["level"]), method=values["method"], factor=float(values["factor"]),
                   n=int(values["n"]), rank=int(values["rank"]), finite_sample=bool(values["finite_sample"]))


def _as_arrays(*columns) -> list[np.ndarray]:
    arrays = [np.asarray(c, dtype=float) for c in columns]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"y, mean, lo and hi must have the same length, got {[a.shape for a in arrays]}")
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("y, mean, lo and hi must be finite; drop or fill the missing values first")
    return arrays


def _excess_ratio(excess: np.ndarray, width: np.ndarray) -> np.ndarray:
    """``excess / width``; where ``width == 0``: 0 if ``excess <= 0``, else ``+inf``."""
    out = np.where(excess > 0, np.inf, 0.0)
    np.divide(excess, width, out=out, where=width > 0)
    return out


def conformity_scores(y, mean, lo, hi) -> np.ndarray:
    """``s = max((mean - y) / (mean - lo), (y - mean) / (hi - mean))`` per point, ``s >= 0``.

    ``s <= 1`` means ``y`` is inside ``[lo, hi]``; ``s <= q`` means it is inside the interval
    rescaled by ``q``. Zero half-widths give 0 or ``+inf`` as in the module docstring.
    """
    y, mean, lo, hi = _as_arrays(y, mean, lo, hi)
    below, above = np.maximum(mean - lo, 0.0), np.maximum(hi - mean, 0.0)
    return np.maximum(_excess_ratio(mean - y, below), _excess_ratio(y - mean, above))


def conformal_rank(n: int, level: int) -> int:
    """``k = ceil((n + 1) * level / 100)``, in integers so that e.g. n=19, level=95 gives 19."""
    if not (isinstance(level, (int, np.integer)) and 0 < level < 100):
        raise ValueError(f"level must be a whole percentage between 1 and 99, got {level!r}")
    return -(-(n + 1) * int(level) // 100)


def conformal_quantile(scores, level: int) -> tuple[float, int]:
    """The ``k``-th smallest score with ``k = ceil((n + 1) level / 100)``, and ``k``.

    When ``k > n`` the largest score is returned (no finite-sample guarantee).
    """
    scores = np.sort(np.asarray(scores, dtype=float))
    if scores.size == 0:
        raise ValueError("no selection-fold points to calibrate on; the comparison needs at least one selection fold")
    rank = conformal_rank(scores.size, level)
    return float(scores[min(rank, scores.size) - 1]), rank


def fit_calibration(y, mean, lo, hi, level: int) -> IntervalCalibration:
    """The calibration of one model's ``level``% interval from calibration points (arrays).

    Scaled by the model's half-widths when the conformal quantile is finite, else the
    absolute-residual interval ``mean -/+ q_abs`` (see the module docstring).
    """
    y, mean, lo, hi = _as_arrays(y, mean, lo, hi)
    q, rank = conformal_quantile(conformity_scores(y, mean, lo, hi), level)
    method: Method = "scaled"
    if not np.isfinite(q):
        q, rank = conformal_quantile(np.abs(y - mean), level)
        method = "absolute"
    return IntervalCalibration(level=int(level), method=method, factor=q, n=int(y.size), rank=rank,
                               finite_sample=rank <= y.size)


def calibrate_interval(mean, lo, hi, calibration: IntervalCalibration) -> tuple[np.ndarray, np.ndarray]:
    """``(lo', hi')``: ``mean -/+ q * half-width`` ('scaled'), ``mean -/+ q`` ('absolute') or
    ``(lo, hi)`` unchanged ('model')."""
    mean, lo, hi = (np.asarray(a, dtype=float) for a in (mean, lo, hi))
    q = calibration.factor
    if calibration.method == "model":
        return lo, hi
    if calibration.method == "absolute":
        return mean - q, mean + q
    return mean - q * np.maximum(mean - lo, 0.0), mean + q * np.maximum(hi - mean, 0.0)


def calibrate_bands(mean, bands: Mapping[int, tuple], calibrations: Mapping[int, IntervalCalibration]
                    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Every level's calibrated ``(lo, hi)``, nested: each level contains the lower levels'.

    ``bands`` maps a level to the model's ``(lo, hi)``; ``calibrations`` needs every such level.
    """
    missing = sorted(set(bands) - set(calibrations))
    if missing:
        raise ValueError(f"no calibration for levels {missing}; calibrate the comparison again")
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    inner = None
    for level in sorted(bands):
        lo, hi = calibrate_interval(mean, *bands[level], calibrations[level])
        if inner is not None:  # a wider level must contain the narrower one
            lo, hi = np.minimum(lo, inner[0]), np.maximum(hi, inner[1])
        out[level] = inner = (lo, hi)
    return out


def fit_calibrations(forecasts: pd.DataFrame, models: Sequence[str], level: Sequence[int] = DEFAULT_LEVELS
                     ) -> dict[str, dict[int, IntervalCalibration]]:
    """Per model and level, the calibration learnt on every row of ``forecasts``.

    Args:
        forecasts: backtest rows (``y``, per model ``<model>`` and ``<model>-lo-<level>`` /
            ``<model>-hi-<level>``) to learn from; choose them with :func:`known_at`.
    """
    return {m: {lv: fit_calibration(forecasts["y"], forecasts[m], forecasts[f"{m}-lo-{lv}"],
                                    forecasts[f"{m}-hi-{lv}"], lv)
                for lv in level}
            for m in models}


def known_at(forecasts: pd.DataFrame, cutoff: pd.Timestamp | None = None, strict: bool = False) -> pd.Series:
    """Rows of the folds whose actual values were all known at ``cutoff`` (every fold when
    ``cutoff`` is None), and never fewer than the selection folds unless ``strict``.

    A fold is known at ``cutoff`` when its last forecast day is not after it.
    """
    if "role" not in forecasts:
        raise ValueError("forecasts need a 'role' column (backtest.assign_roles) to tell the selection folds apart")
    if cutoff is None:
        return pd.Series(True, index=forecasts.index)
    last_day = forecasts.groupby("cutoff")["ds"].transform("max")
    known = last_day <= cutoff
    return known if strict else known | (forecasts["role"] == "selection")


def _coverage(y, lo, hi) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    return (y >= np.asarray(lo)) & (y <= np.asarray(hi))


def own_interval_was_nearer(past: pd.DataFrame, model: str, level: int) -> bool:
    """Whether ``model``'s own ``level``% interval came closer to ``level``% coverage than the
    conformal one over ``past``'s folds, each calibrated on the folds of ``past`` finished before
    its cutoff (folds with none are skipped; with no such fold the answer is False)."""
    calibrated, raw = [], []
    last_day = past.groupby("cutoff")["ds"].transform("max")  # known_at(past, cutoff, strict=True), once
    for cutoff, fold in past.groupby("cutoff"):
        before = past[last_day <= cutoff]
        if before.empty:
            continue
        earlier = fit_calibrations(before, [model], [level])[model][level]
        own = (fold[f"{model}-lo-{level}"], fold[f"{model}-hi-{level}"])
        calibrated.append(_coverage(fold["y"], *calibrate_interval(fold[model], *own, earlier)))
        raw.append(_coverage(fold["y"], *own))
    if not calibrated:
        return False
    nominal = level / 100
    return abs(np.concatenate(raw).mean() - nominal) < abs(np.concatenate(calibrated).mean() - nominal)


def served_calibration(past: pd.DataFrame, model: str, level: int,
                       fitted: IntervalCalibration | None = None) -> IntervalCalibration:
    """The interval to serve for ``model`` at ``level`` after the folds in ``past``: the conformal
    calibration learnt on all of ``past`` (``fitted``, when the caller has it), unless
    :func:`own_interval_was_nearer`; then ``method='model'``, factor 1."""
    if fitted is None:
        fitted = fit_calibrations(past, [model], [level])[model][level]
    return replace(fitted, method="model", factor=1.0) if own_interval_was_nearer(past, model, level) else fitted


def calibrate_by_fold(forecasts: pd.DataFrame, models: Sequence[str], level: Sequence[int] = DEFAULT_LEVELS
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each fold's intervals as they would have been calibrated at its cutoff.

    Every fold is calibrated on :func:`known_at` its cutoff (the selection folds on themselves,
    each evaluation fold on the selection folds and the evaluation folds finished before it).

    Returns:
        ``(calibrated, served)``: the backtest table with every model's interval columns
        replaced by the conformal ones, and by the ones :func:`served_calibration` chooses.
    """
    calibrated, served = [], []
    for cutoff, fold in forecasts.groupby("cutoff", sort=True):
        past = forecasts[known_at(forecasts, cutoff)]
        conformal = fit_calibrations(past, models, level)
        chosen = {m: {lv: served_calibration(past, m, lv, conformal[m][lv]) for lv in level} for m in models}
        calibrated.append(calibrate_forecasts(fold, conformal))
        served.append(calibrate_forecasts(fold, chosen))
    return pd.concat(calibrated).loc[forecasts.index], pd.concat(served).loc[forecasts.index]


def served_calibrations(forecasts: pd.DataFrame, models: Sequence[str], level: Sequence[int] = DEFAULT_LEVELS
                        ) -> dict[str, dict[int, IntervalCalibration]]:
    """What the artifact serves: :func:`served_calibration` after every fold of ``forecasts``."""
    return {m: {lv: served_calibration(forecasts, m, lv) for lv in level} for m in models}


def calibrate_columns(frame: pd.DataFrame, mean: str, calibrations: Mapping[int, IntervalCalibration],
                      prefix: str = "") -> pd.DataFrame:
    """A copy of ``frame`` with its ``<prefix>lo-<level>`` / ``<prefix>hi-<level>`` columns calibrated
    about the column ``mean``, for every level in ``calibrations``."""
    bands = {lv: (frame[f"{prefix}lo-{lv}"], frame[f"{prefix}hi-{lv}"]) for lv in calibrations}
    out = frame.copy()
    for lv, (lo, hi) in calibrate_bands(frame[mean], bands, calibrations).items():
        out[f"{prefix}lo-{lv}"], out[f"{prefix}hi-{lv}"] = lo, hi
    return out


def calibrate_forecasts(forecasts: pd.DataFrame, calibrations: Calibrations) -> pd.DataFrame:
    """The backtest table with every calibrated model's interval columns replaced."""
    for model, by_level in calibrations.items():
        forecasts = calibrate_columns(forecasts, model, by_level, prefix=f"{model}-")
    return forecasts


def fold_coverage(forecasts: pd.DataFrame, models: Sequence[str], level: Sequence[int] = DEFAULT_LEVELS,
                  metric: str = "coverage") -> pd.DataFrame:
    """Share of actual values inside each model's interval per fold (bounds included).

    Returns ``cutoff, model, metric, value`` rows, ``metric`` being ``<metric>_<level>``, the
    shape of ``backtest.score``.
    """
    rows = []
    for cutoff, fold in forecasts.groupby("cutoff"):
        y = fold["y"].to_numpy()
        for m in models:
            for lv in level:
                inside = _coverage(y, fold[f"{m}-lo-{lv}"], fold[f"{m}-hi-{lv}"])
                rows.append({"cutoff": cutoff, "model": m, "metric": f"{metric}_{lv}", "value": float(inside.mean())})
    return pd.DataFrame(rows, columns=["cutoff", "model", "metric", "value"])


def to_record(calibrations: Calibrations) -> dict[str, dict[str, dict]]:
    """JSON-ready ``{model: {"<level>": {...}}}``."""
    return {m: {str(lv): c.to_dict() for lv, c in by_level.items()} for m, by_level in calibrations.items()}


def from_record(record: Mapping[str, Mapping[str, Mapping]] | None) -> dict[str, dict[int, IntervalCalibration]]:
    """The inverse of :func:`to_record`."""
    if not record:
        raise ValueError("the selection record has no interval calibration; run the model comparison again "
                         "(`make run`) to write one")
    return {m: {int(lv): IntervalCalibration.from_dict(c) for lv, c in by_level.items()}
            for m, by_level in record.items()}
