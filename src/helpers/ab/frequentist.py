"""Fixed-horizon frequentist tests beside the Bayesian analysis (:mod:`helpers.ab.bayesian`).

- Conversion: two-proportion z-test per variant against control with a Newcombe interval
  for the difference, Holm-adjusted over the variants; a chi-square test of all variants.
- Revenue per user: Welch's t-test from the summary statistics and Mann-Whitney on the
  per-user values, both Holm-adjusted.

Sequential monitoring is in :mod:`helpers.ab.sequential`, power in :mod:`helpers.ab.power`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from helpers.ab.inputs import ABConfig, check_analysable
from helpers.core.stats import adjust_p_values


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
    table["p_adjusted"] = adjust_p_values(table["p_value"], "holm")
    table["significant"] = (table["p_adjusted"] < alpha).to_numpy()
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
    table["mw_p_adjusted"] = adjust_p_values(table["mw_p_value"], "holm")
    return table


