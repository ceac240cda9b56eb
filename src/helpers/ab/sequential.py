"""Sequential monitoring of the daily cumulative counts, per variant against control.

Wald's SPRT of "no lift" against "lift = MDE" on the normal approximation of the difference
in rates, and the always-valid mixture SPRT (mSPRT, Johari et al. 2017), whose p-value can be
checked every day without inflating the type I error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from helpers.ab.inputs import ABConfig, NotAnalysable


def sprt_bounds(alpha: float, beta: float) -> tuple[float, float]:
    """Wald's log-likelihood-ratio boundaries: (accept H0 at or below, reject H0 at or above)."""
    return float(np.log(beta / (1 - alpha))), float(np.log((1 - beta) / alpha))


def sequential_path(n_c: np.ndarray, x_c: np.ndarray, n_v: np.ndarray, x_v: np.ndarray, delta: float,
                    alpha: float, beta: float, tau: float | None = None) -> pd.DataFrame:
    """SPRT and mSPRT statistics after each look (cumulative users ``n`` and conversions ``x``).

    With d the observed difference in rates and V its (plug-in) variance, the SPRT's
    log-likelihood ratio of lift ``delta`` against no lift is (delta d - delta^2 / 2) / V.
    The mSPRT mixes the alternative over N(0, tau^2) (tau = delta by default):
    Lambda = sqrt(V / (V + tau^2)) exp(tau^2 d^2 / (2 V (V + tau^2))), and its always-valid
    p-value is the running minimum of 1 / Lambda.
    """
    n_c, x_c, n_v, x_v = (np.asarray(a, dtype=float) for a in (n_c, x_c, n_v, x_v))
    with np.errstate(divide="ignore", invalid="ignore"):
        p_c, p_v = x_c / n_c, x_v / n_v
        d = p_v - p_c
        var = p_c * (1 - p_c) / n_c + p_v * (1 - p_v) / n_v
        defined = var > 0
        llr = np.where(defined, (delta * d - delta ** 2 / 2) / var, 0.0)
        tau2 = (delta if tau is None else tau) ** 2
        log_lambda = np.where(defined, 0.5 * np.log(var / (var + tau2)) + tau2 * d ** 2 / (2 * var * (var + tau2)), 0.0)
    p_always = np.minimum.accumulate(np.minimum(1.0, np.exp(-log_lambda)))
    low, high = sprt_bounds(alpha, beta)
    return pd.DataFrame({"difference": d, "llr": llr, "accept_bound": low, "reject_bound": high,
                         "msprt_p": p_always})


def first_stop(path: pd.DataFrame, alpha: float) -> dict[str, int | str | None]:
    """The first look (0-based) at which each test stops, and the SPRT's conclusion."""
    high, low = path["reject_bound"].iloc[0], path["accept_bound"].iloc[0]
    crossed = np.flatnonzero((path["llr"] >= high) | (path["llr"] <= low))
    sprt_at = int(crossed[0]) if len(crossed) else None
    conclusion = None if sprt_at is None else ("lift" if path["llr"].iloc[sprt_at] >= high else "no lift")
    msprt = np.flatnonzero(path["msprt_p"] <= alpha)
    return {"sprt_look": sprt_at, "sprt_conclusion": conclusion, "msprt_look": int(msprt[0]) if len(msprt) else None}


@dataclass
class Sequential:
    """Daily SPRT/mSPRT paths per variant, the day each test would have stopped, and how the
    effect size was fixed (a sentence for the report)."""

    paths: pd.DataFrame
    stops: pd.DataFrame
    method: str


def sequential_monitoring(cumulative: pd.DataFrame, control: str, config: ABConfig,
                          baseline_rate: float | None = None) -> Sequential:
    """Daily SPRT/mSPRT of each variant against control, with an effect size fixed before the data it judges.

    The SPRT's alternative (lift = ``mde`` x the control's rate) and the mSPRT's mixing width
    (tau = that lift) must not depend on the days they test, or the statistic shown for day 3
    would change with days 4-14. They come from, in order of preference:

    - ``baseline_rate``, the control rate pre-registered in the experiment's plan: every day is tested;
    - otherwise the control's rate over the first ``config.burn_in_days`` days (the burn-in), which
      are then left out: the tests start on the next day with the counts from that day on.

    ``cumulative`` has one row per day and variant with cumulative ``users`` and ``conversions``.
    """
    wide = cumulative.pivot(index="day", columns="variant", values=["users", "conversions"]).ffill().fillna(0)
    if control not in wide["users"].columns:
        raise NotAnalysable(f"the control {control!r} has no users, so nothing can be monitored against it")
    if baseline_rate is not None:
        base = float(baseline_rate)
        method = (f"The effect size is fixed by the pre-registered baseline rate of the control, {base:.2%}, "
                  "set in the experiment's plan before the data was collected; every day is tested.")
    else:
        burn = config.burn_in_days
        if len(wide) <= burn:
            raise NotAnalysable(
                f"the experiment has {len(wide)} days of data; the sequential tests need more than the {burn} "
                "burn-in days (ab_burn_in_days), or a pre-registered baseline_rate in the experiment's plan")
        users, conversions = wide["users"][control].iloc[burn - 1], wide["conversions"][control].iloc[burn - 1]
        if not 0 < conversions < users:
            raise NotAnalysable(f"the control converted {int(conversions)} of {int(users)} users in the {burn} "
                                "burn-in days: a rate of 0 or 1 cannot size the effect; set a baseline_rate in "
                                "the experiment's plan")
        base = conversions / users
        method = (f"No baseline rate was pre-registered, so the effect size is fixed by the control's rate in the "
                  f"first {burn} days (burn-in, ab_burn_in_days), {base:.2%}; those days are left out and the "
                  "tests use the data from the next day on, so no statistic depends on the data it judges.")
        wide = wide.iloc[burn:] - wide.iloc[burn - 1]
    delta = config.mde * base
    beta = 1 - config.power
    paths, stops = [], []
    for variant in [v for v in wide["users"].columns if v != control]:
        path = sequential_path(wide["users"][control], wide["conversions"][control], wide["users"][variant],
                               wide["conversions"][variant], delta, config.alpha, beta, tau=delta)
        path.insert(0, "day", wide.index)
        path.insert(1, "variant", variant)
        paths.append(path)
        stop = first_stop(path, config.alpha)
        stops.append({"variant": variant, "baseline rate": base, "MDE (absolute)": delta,
                      "SPRT stop day": None if stop["sprt_look"] is None else path["day"].iloc[stop["sprt_look"]],
                      "SPRT conclusion": stop["sprt_conclusion"] or "no decision by the last day",
                      "mSPRT stop day": None if stop["msprt_look"] is None else path["day"].iloc[stop["msprt_look"]],
                      "final mSPRT p": float(path["msprt_p"].iloc[-1])})
    return Sequential(pd.concat(paths, ignore_index=True), pd.DataFrame(stops), method)
