"""Frequentist, sequential and power analyses beside the Bayesian one (``helpers.abtest``).

- Conversion: two-proportion z-test per variant against control with a Newcombe interval
  for the difference, Holm-adjusted over the variants; a chi-square test of all variants.
- Revenue per user: Welch's t-test from the summary statistics and Mann-Whitney on the
  per-user values, both Holm-adjusted.
- Sequential monitoring of the daily cumulative counts, per variant against control:
  Wald's SPRT of "no lift" against "lift = MDE" on the normal approximation of the
  difference in rates, and the always-valid mixture SPRT (mSPRT, Johari et al. 2017), whose
  p-value can be checked every day without inflating the type I error.
- Power: users per variant needed to detect the MDE (statsmodels), and the power reached.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize, proportions_ztest

from helpers.abtest import ABConfig, check_analysable


def conversion_tests(summary: pd.DataFrame, config: ABConfig) -> pd.DataFrame:
    """z-test and Newcombe CI of each variant's rate difference from control, Holm-adjusted."""
    summary = check_analysable(summary)
    control = summary.iloc[0]
    rows = []
    for _, v in summary.iloc[1:].iterrows():
        row = {"variant": v["variant"], "difference": v["conversions"] / v["users"] - control["conversions"] / control["users"]}
        pooled = (v["conversions"] + control["conversions"]) / (v["users"] + control["users"])
        if pooled in (0.0, 1.0):
            row.update(z=np.nan, p_value=np.nan, ci_low=np.nan, ci_high=np.nan,
                       note=f"{'no' if pooled == 0 else 'every'} user converted in {v['variant']} and the control: "
                            "the z-test is undefined (zero variance)")
        else:
            z, p = proportions_ztest([v["conversions"], control["conversions"]], [v["users"], control["users"]])
            low, high = confint_proportions_2indep(v["conversions"], v["users"], control["conversions"],
                                                   control["users"], method="newcomb", alpha=config.alpha)
            row.update(z=float(z), p_value=float(p), ci_low=float(low), ci_high=float(high), note="")
        rows.append(row)
    table = pd.DataFrame(rows)
    return _holm(table, config.alpha)


def _holm(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    tested = table["p_value"].notna()
    table["p_adjusted"] = np.nan
    table["significant"] = False
    if tested.any():
        reject, adjusted, _, _ = multipletests(table.loc[tested, "p_value"], alpha=alpha, method="holm")
        table.loc[tested, "p_adjusted"] = adjusted
        table.loc[tested, "significant"] = reject
    return table


def chi_square_all(summary: pd.DataFrame) -> dict[str, float | str]:
    """Chi-square test of independence of variant and conversion over all variants."""
    summary = check_analysable(summary)
    counts = np.column_stack([summary["conversions"], summary["users"] - summary["conversions"]])
    if (counts.sum(axis=0) == 0).any():
        return {"chi2": np.nan, "dof": np.nan, "p_value": np.nan,
                "note": "every user or no user converted: the chi-square test is undefined"}
    chi2, p, dof, _ = stats.chi2_contingency(counts, correction=False)
    return {"chi2": float(chi2), "dof": int(dof), "p_value": float(p), "note": ""}


def revenue_tests(summary: pd.DataFrame, users: pd.DataFrame, config: ABConfig) -> pd.DataFrame:
    """Welch's t-test (with CI) and Mann-Whitney U on revenue per user, each Holm-adjusted."""
    summary = check_analysable(summary)
    mean = summary["revenue"] / summary["users"]
    var = ((summary["revenue_sq"] - summary["users"] * mean ** 2) / (summary["users"] - 1)).clip(lower=0)
    c = 0
    rows = []
    for k in range(1, len(summary)):
        n1, n2, v1, v2 = summary.loc[k, "users"], summary.loc[c, "users"], var[k], var[c]
        diff = mean[k] - mean[c]
        se2 = v1 / n1 + v2 / n2
        row = {"variant": summary.loc[k, "variant"], "difference": float(diff)}
        if se2 <= 0 or min(n1, n2) < 2:
            row.update(t=np.nan, p_value=np.nan, ci_low=np.nan, ci_high=np.nan, mw_p_value=np.nan,
                       note="revenue does not vary (or too few users): the tests are undefined")
        else:
            t, p = stats.ttest_ind_from_stats(mean[k], np.sqrt(v1), n1, mean[c], np.sqrt(v2), n2, equal_var=False)
            dof = se2 ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
            half = stats.t.ppf(1 - config.alpha / 2, dof) * np.sqrt(se2)
            a = users.loc[users["variant"] == summary.loc[k, "variant"], "revenue"]
            b = users.loc[users["variant"] == summary.loc[c, "variant"], "revenue"]
            mw = stats.mannwhitneyu(a, b, alternative="two-sided")
            row.update(t=float(t), p_value=float(p), ci_low=float(diff - half), ci_high=float(diff + half),
                       mw_p_value=float(mw.pvalue), note="")
        rows.append(row)
    table = _holm(pd.DataFrame(rows), config.alpha)
    tested = table["mw_p_value"].notna()
    table["mw_p_adjusted"] = np.nan
    if tested.any():
        table.loc[tested, "mw_p_adjusted"] = multipletests(table.loc[tested, "mw_p_value"], method="holm")[1]
    return table


# -- sequential -----------------------------------------------------------------------------------------
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


def sequential_monitoring(cumulative: pd.DataFrame, control: str, config: ABConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily SPRT/mSPRT paths of each variant against control, and the day each would have stopped."""
    wide = cumulative.pivot(index="day", columns="variant", values=["users", "conversions"]).ffill().fillna(0)
    if control not in wide["users"].columns:
        raise ValueError(f"control {control!r} has no users")
    base = wide["conversions"][control].iloc[-1] / max(wide["users"][control].iloc[-1], 1)
    delta = config.mde * base
    beta = 1 - config.power
    paths, stops = [], []
    for variant in [v for v in wide["users"].columns if v != control]:
        path = sequential_path(wide["users"][control], wide["conversions"][control], wide["users"][variant],
                               wide["conversions"][variant], delta, config.alpha, beta)
        path.insert(0, "day", wide.index)
        path.insert(1, "variant", variant)
        paths.append(path)
        stop = first_stop(path, config.alpha)
        stops.append({"variant": variant, "MDE (absolute)": delta,
                      "SPRT stop day": None if stop["sprt_look"] is None else path["day"].iloc[stop["sprt_look"]],
                      "SPRT conclusion": stop["sprt_conclusion"] or "no decision by the last day",
                      "mSPRT stop day": None if stop["msprt_look"] is None else path["day"].iloc[stop["msprt_look"]],
                      "final mSPRT p": float(path["msprt_p"].iloc[-1])})
    return pd.concat(paths, ignore_index=True), pd.DataFrame(stops)


# -- power ----------------------------------------------------------------------------------------------
def required_users(baseline: float, mde: float, alpha: float, power: float, comparisons: int = 1) -> int:
    """Users per variant for a two-sided z-test to detect a relative lift ``mde`` over ``baseline``
    (alpha Bonferroni-split over ``comparisons``)."""
    if not 0 < baseline < 1 or not 0 < baseline * (1 + mde) < 1:
        raise ValueError(f"baseline {baseline} and lift {mde} must give rates strictly between 0 and 1")
    effect = proportion_effectsize(baseline * (1 + mde), baseline)
    n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha / comparisons, power=power, ratio=1.0,
                                     alternative="two-sided")
    return int(np.ceil(n))


def achieved_power(baseline: float, mde: float, alpha: float, users: int, comparisons: int = 1) -> float:
    """Power of the z-test with ``users`` per variant to detect the MDE (not the observed lift)."""
    effect = proportion_effectsize(baseline * (1 + mde), baseline)
    return float(NormalIndPower().power(effect_size=effect, nobs1=users, alpha=alpha / comparisons, ratio=1.0,
                                        alternative="two-sided"))


def power_table(summary: pd.DataFrame, config: ABConfig) -> pd.DataFrame:
    summary = check_analysable(summary)
    baseline = summary["conversions"].iloc[0] / summary["users"].iloc[0]
    comparisons = len(summary) - 1
    if not 0 < baseline < 1:
        raise ValueError(f"the control's conversion rate is {baseline:.0%}: power cannot be computed")
    needed = required_users(baseline, config.mde, config.alpha, config.power, comparisons)
    smallest = int(summary["users"].min())
    return pd.DataFrame([{
        "control rate": baseline, "MDE (relative)": config.mde, "alpha per comparison": config.alpha / comparisons,
        "target power": config.power, "users needed per variant": needed, "smallest variant": smallest,
        "achieved power": achieved_power(baseline, config.mde, config.alpha, smallest, comparisons),
    }])
