"""Bayesian A/B analysis from per-variant summary statistics, with a PyMC cross-check.

Conversion: each variant's rate has a Beta(1, 1) prior and a binomial likelihood, so the
posterior is Beta(1 + conversions, 1 + users - conversions) in closed form. That is the
fast path used by default: P(variant beats control) is the exact finite sum of Miller
(2015); the other summaries (probability to be best, expected loss, highest-density
intervals of the lift) come from seeded draws of the exact posterior. ``helpers.ab.mcmc``
fits the same model by NUTS and shows that the two agree.

Revenue per user is zero-inflated and skewed: it is modelled as (share of users who pay)
times (mean order value), with a log-normal order value. The closed form uses the
conjugate Beta and Normal-Inverse-Gamma posteriors (reference prior), summarised by
medians and HDIs because that posterior has no mean; ``helpers.ab.mcmc.pymc_revenue`` fits
the same structure in PyMC from the same summary statistics.

Decision rule (Kruschke's HDI + ROPE): a variant is *better* when the whole 95% HDI of its
absolute lift over control lies above the region of practical equivalence ``[-rope, rope]``,
*worse* when it lies below, *equivalent* when it lies inside, and *undecided* otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from helpers.ab.inputs import ABConfig, NotAnalysable, check_analysable

HDI_PROB = 0.95
#: Largest log order value a revenue draw keeps (e^354 ~ 1e154): beyond it, differences would overflow.
LOG_CAP = 354.0


# -- conversion, closed form ----------------------------------------------------------------------------
def beta_parameters(summary: pd.DataFrame) -> pd.DataFrame:
    """Posterior Beta(a, b) of each variant's conversion rate under a uniform prior."""
    return pd.DataFrame({"variant": summary["variant"], "a": 1.0 + summary["conversions"],
                         "b": 1.0 + summary["users"] - summary["conversions"]})


def prob_beats(a_control: float, b_control: float, a_variant: float, b_variant: float) -> float:
    """Exact P(p_variant > p_control) for independent Beta posteriors with integer ``a_variant``.

    Miller (2015): sum over i < a_variant of B(a_c + i, b_c + b_v) / ((b_v + i) B(1 + i, b_v) B(a_c, b_c)).
    """
    if a_variant != int(a_variant) or a_variant < 1:
        raise ValueError("the exact sum needs a whole-number a_variant >= 1 (uniform or integer prior)")
    i = np.arange(int(a_variant))
    terms = (special.betaln(a_control + i, b_control + b_variant) - np.log(b_variant + i)
             - special.betaln(1 + i, b_variant) - special.betaln(a_control, b_control))
    return float(np.clip(np.exp(special.logsumexp(terms)), 0.0, 1.0))


def conversion_draws(summary: pd.DataFrame, draws: int, seed: int) -> pd.DataFrame:
    """Seeded draws of each variant's rate from its exact posterior (columns: variants)."""
    rng = np.random.default_rng(seed)
    params = beta_parameters(summary)
    return pd.DataFrame({row.variant: rng.beta(row.a, row.b, draws) for row in params.itertuples()})


def hdi_rows(values: np.ndarray, prob: float = HDI_PROB) -> np.ndarray:
    """Narrowest interval holding ``prob`` of the draws in each row (ArviZ's definition),
    vectorised over rows: an array of shape (rows, 2)."""
    values = np.sort(np.atleast_2d(np.asarray(values, dtype=float)), axis=1)
    n = values.shape[1]
    k = int(np.floor(prob * n))
    widths = values[:, k:] - values[:, : n - k]
    start = widths.argmin(axis=1)
    rows = np.arange(len(values))
    return np.column_stack([values[rows, start], values[rows, start + k]])


def hdi(values: np.ndarray, prob: float = HDI_PROB) -> tuple[float, float]:
    """Narrowest interval holding ``prob`` of the draws."""
    low, high = hdi_rows(values, prob)[0]
    return float(low), float(high)


def decide(low: float, high: float, rope: float) -> str:
    """HDI + ROPE rule on the absolute lift: better, worse, equivalent or undecided."""
    if low > rope:
        return "better"
    if high < -rope:
        return "worse"
    if -rope <= low and high <= rope:
        return "equivalent"
    return "undecided"


def conversion_analysis(summary: pd.DataFrame, config: ABConfig) -> pd.DataFrame:
    """Every variant against control: rates, P(best), P(beat control), expected losses, lift HDIs, decision."""
    summary = check_analysable(summary)
    draws = conversion_draws(summary, config.draws, config.seed)
    params = beta_parameters(summary).set_index("variant")
    control = summary["variant"].iloc[0]
    best = draws.to_numpy().argmax(axis=1)
    rows = []
    for k, variant in enumerate(draws.columns):
        row = {"variant": variant, "users": int(summary.loc[k, "users"]),
               "conversions": int(summary.loc[k, "conversions"]),
               "rate": float(summary.loc[k, "conversions"] / summary.loc[k, "users"]),
               "posterior mean": float(params.loc[variant, "a"] / params.loc[variant, "a":"b"].sum()),
               "P(best)": float((best == k).mean())}
        if variant != control:
            lift = draws[variant] - draws[control]
            relative = lift / draws[control]
            low, high = hdi(lift.to_numpy())
            rel_low, rel_high = hdi(relative.to_numpy())
            row.update({
                "P(beat control)": prob_beats(*params.loc[control, ["a", "b"]], *params.loc[variant, ["a", "b"]]),
                "expected loss if shipped": float(np.maximum(-lift, 0).mean()),
                "expected loss if kept control": float(np.maximum(lift, 0).mean()),
                "lift": float(lift.mean()), "lift HDI low": low, "lift HDI high": high,
                "relative lift": float(relative.mean()),
                "relative lift HDI low": rel_low, "relative lift HDI high": rel_high,
                "P(in ROPE)": float((lift.abs() <= config.rope).mean()),
                "decision": decide(low, high, config.rope),
            })
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["notes"] = summary.attrs.get("notes", [])
    return table


def lift_draws(summary: pd.DataFrame, config: ABConfig) -> pd.DataFrame:
    """Draws of each variant's absolute lift over control (long: variant, lift)."""
    summary = check_analysable(summary)
    draws = conversion_draws(summary, config.draws, config.seed)
    control = draws.columns[0]
    return pd.concat([pd.DataFrame({"variant": v, "lift": draws[v] - draws[control]}) for v in draws.columns[1:]],
                     ignore_index=True)


def explain(table: pd.DataFrame, rope: float) -> list[str]:
    """One plain-language sentence per variant from :func:`conversion_analysis`."""
    control = table["variant"].iloc[0]
    sentences = []
    for row in table.iloc[1:].to_dict("records"):
        low, high, decision = row["lift HDI low"], row["lift HDI high"], row["decision"]
        span = f"between {low * 100:+.2f} and {high * 100:+.2f} percentage points"
        verdict = {
            "better": f"ship it: the lift is credibly larger than the {rope * 100:.1f}-point margin we care about",
            "worse": "do not ship it: it credibly converts less than the control",
            "equivalent": f"it makes no practical difference (the lift is within ±{rope * 100:.1f} points)",
            "undecided": "the data cannot tell yet; keep the experiment running or accept the stated risk",
        }[decision]
        sentences.append(
            f"**{row['variant']}** beats {control} with probability {row['P(beat control)']:.1%}; its conversion "
            f"lift is {span} (95% credible interval). Shipping it risks losing "
            f"{row['expected loss if shipped'] * 100:.3f} points on average if it is in fact worse. "
            f"Verdict: {verdict}.")
    return sentences


# -- revenue, closed form -------------------------------------------------------------------------------
def revenue_draws(summary: pd.DataFrame, draws: int, seed: int, min_payers: int = 3) -> pd.DataFrame:
    """Draws of revenue per user: P(pay) x mean log-normal order value, from conjugate posteriors.

    P(pay) ~ Beta(1 + payers, 1 + users - payers). For the log order values (payers only)
    the reference prior gives sigma^2 ~ Inv-Gamma((n - 1) / 2, SS / 2) and
    mu | sigma^2 ~ N(mean, sigma^2 / n); the mean order value is exp(mu + sigma^2 / 2).

    That posterior has no mean: E[exp(sigma^2 / 2)] is infinite under any inverse-gamma, whose
    tail is polynomial. Summaries of these draws must be quantiles (median, HDI), never means.
    With few payers the tail is so heavy that even the quantiles are absurd (3 payers: upper HDI
    bounds of 1e5 times the order value), hence ``min_payers``. Draws are capped at e^:data:`LOG_CAP`,
    far beyond any reported quantile, so that lifts stay finite.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for row in summary.itertuples(index=False):
        n = int(row.payers)
        if n < max(min_payers, 3):
            raise NotAnalysable(
                f"{row.variant!r} has {n} paying users; the revenue model needs at least {max(min_payers, 3)} per "
                "variant (ab_min_payers): with fewer, the spread of the order values is so uncertain that revenue "
                "per user has no usable estimate")
        mean = row.log_revenue / n
        ss = max(row.log_revenue_sq - n * mean ** 2, 1e-12)
        sigma2 = 1 / rng.gamma((n - 1) / 2, 2 / ss, draws)
        mu = rng.normal(mean, np.sqrt(sigma2 / n))
        pay = rng.beta(1 + n, 1 + row.users - n, draws)
        # capped so that differences and ratios of draws stay finite; only the far tail is touched
        out[row.variant] = pay * np.exp(np.minimum(mu + sigma2 / 2, LOG_CAP))
    return pd.DataFrame(out)


def revenue_analysis(summary: pd.DataFrame, config: ABConfig) -> pd.DataFrame:
    """Revenue per user of every variant against control, from :func:`revenue_draws`.

    Posterior medians and 95% HDIs (the posterior has no mean, see :func:`revenue_draws`):
    ``posterior median``, ``lift`` (median of the difference), its HDI, the relative lift and
    P(beat control).
    """
    summary = check_analysable(summary)
    draws = revenue_draws(summary, config.draws, config.seed, config.min_payers)
    control = draws.columns[0]
    best = draws.to_numpy().argmax(axis=1)
    rows = []
    for k, variant in enumerate(draws.columns):
        row = {"variant": variant, "payers": int(summary.loc[k, "payers"]),
               "revenue per user": float(summary.loc[k, "revenue"] / summary.loc[k, "users"]),
               "posterior median": float(draws[variant].median()), "P(best)": float((best == k).mean())}
        if variant != control:
            lift = draws[variant] - draws[control]
            low, high = hdi(lift.to_numpy())
            relative = (lift / draws[control]).to_numpy()
            rel_low, rel_high = hdi(relative)
            row.update({"P(beat control)": float((lift > 0).mean()), "lift": float(lift.median()),
                        "lift HDI low": low, "lift HDI high": high, "relative lift": float(np.median(relative)),
                        "relative lift HDI low": rel_low, "relative lift HDI high": rel_high})
        rows.append(row)
    return pd.DataFrame(rows)


def beat_control_over_time(cumulative: pd.DataFrame, control: str) -> pd.DataFrame:
    """Exact P(beat control) at the end of each day (columns: day, variant, P(beat control))."""
    rows = []
    for day, part in cumulative.groupby("day"):
        part = part.set_index("variant")
        if control not in part.index:
            continue
        c = part.loc[control]
        for variant, v in part.drop(index=control).iterrows():
            rows.append({"day": day, "variant": variant, "P(beat control)": prob_beats(
                1 + c["conversions"], 1 + c["users"] - c["conversions"], 1 + v["conversions"],
                1 + v["users"] - v["conversions"])})
    return pd.DataFrame(rows)


