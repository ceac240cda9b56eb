"""Bayesian A/B analysis: known answers, degenerate inputs, PyMC against the closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.ab import bayesian as ab
from helpers.ab import mcmc
from helpers.ab.inputs import ABConfig, NotAnalysable
from tests.ab.builders import FAST, summary


@given(st.integers(0, 60), st.integers(0, 60), st.integers(1, 40), st.integers(1, 40))
@settings(max_examples=40, deadline=None)
def test_exact_probability_matches_monte_carlo(a_conv, b_conv, a_fail, b_fail):
    exact = ab.prob_beats(1 + a_conv, 1 + a_fail, 1 + b_conv, 1 + b_fail)
    rng = np.random.default_rng(0)
    mc = (rng.beta(1 + b_conv, 1 + b_fail, 200_000) > rng.beta(1 + a_conv, 1 + a_fail, 200_000)).mean()
    assert exact == pytest.approx(mc, abs=0.006)


def test_exact_probability_known_values_and_symmetry():
    assert ab.prob_beats(1, 1, 1, 1) == pytest.approx(0.5)
    assert ab.prob_beats(11, 91, 11, 91) == pytest.approx(0.5, abs=0.02)  # ties get half, minus the atom-free part
    p = ab.prob_beats(101, 901, 131, 871)
    assert p + ab.prob_beats(131, 871, 101, 901) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="whole-number"):
        ab.prob_beats(1, 1, 1.5, 1)


def test_hdi_matches_arviz():
    az = mcmc.arviz()
    x = np.random.default_rng(1).gamma(2.0, size=4000)
    assert ab.hdi(x) == pytest.approx(tuple(az.hdi(x, hdi_prob=0.95)))


@pytest.mark.parametrize("low, high, decision", [
    (0.003, 0.01, "better"), (-0.01, -0.003, "worse"), (-0.001, 0.0015, "equivalent"), (-0.001, 0.01, "undecided"),
])
def test_decision_rule(low, high, decision):
    assert ab.decide(low, high, rope=0.002) == decision


def test_a_clear_winner_is_shipped_and_explained():
    table = ab.conversion_analysis(summary(("control", 20000, 2000), ("new", 20000, 2400)), FAST)
    row = table.set_index("variant").loc["new"]
    assert row["decision"] == "better" and row["P(beat control)"] > 0.999 and row["P(best)"] > 0.999
    assert row["lift HDI low"] < 0.02 < row["lift HDI high"]
    assert row["relative lift"] == pytest.approx(0.2, abs=0.02)
    assert row["expected loss if shipped"] < 1e-6 < row["expected loss if kept control"]
    (sentence,) = ab.explain(table, FAST.rope)
    assert "**new** beats control with probability" in sentence and "ship it" in sentence


def test_three_variants_share_the_probability_of_being_best():
    table = ab.conversion_analysis(summary(("control", 5000, 500), ("b", 5000, 520), ("c", 5000, 480)), FAST)
    assert table["P(best)"].sum() == pytest.approx(1.0)
    assert table.set_index("variant")["P(best)"].idxmax() == "b"


@pytest.mark.parametrize("rows, message", [
    ([("control", 0, 0), ("b", 100, 5)], "control variant 'control' has no users"),
    ([("control", 100, 5)], "at least two variants"),
    ([("control", 100, 5), ("b", 0, 0)], "at least two variants"),
])
def test_unanalysable_inputs_give_a_sentence(rows, message):
    with pytest.raises(NotAnalysable, match=message):
        ab.conversion_analysis(summary(*rows), FAST)


def test_an_empty_variant_is_left_out_with_a_note_and_all_converted_still_works():
    table = ab.conversion_analysis(summary(("control", 100, 100), ("b", 100, 100), ("c", 0, 0)), FAST)
    assert list(table["variant"]) == ["control", "b"]
    assert "'c' has no users" in table.attrs["notes"][0]
    assert table.loc[1, "decision"] in ("equivalent", "undecided")


def test_revenue_closed_form_recovers_the_true_revenue_per_user():
    rng = np.random.default_rng(2)
    rows = []
    for name, rate, mean in (("control", 0.1, 40.0), ("b", 0.1, 50.0)):
        n = 20000
        paid = rng.lognormal(np.log(mean) - 0.32, 0.8, rng.binomial(n, rate))
        rows.append({"variant": name, "users": n, "conversions": len(paid), "payers": len(paid),
                     "revenue": paid.sum(), "revenue_sq": (paid ** 2).sum(), "log_revenue": np.log(paid).sum(),
                     "log_revenue_sq": (np.log(paid) ** 2).sum()})
    table = ab.revenue_analysis(pd.DataFrame(rows), FAST).set_index("variant")
    # The posterior centres on the sample's revenue per user, which is near the truth (4 and 5).
    assert table["posterior median"].to_numpy() == pytest.approx(table["revenue per user"].to_numpy(), rel=0.02)
    assert table["posterior median"].to_numpy() == pytest.approx([4.0, 5.0], rel=0.1)
    assert table.loc["b", "P(beat control)"] > 0.95
    with pytest.raises(NotAnalysable, match="at least 20 per variant"):
        ab.revenue_draws(pd.DataFrame(rows).assign(payers=19), 100, 0, min_payers=20)


def _few_payers(payers: int, seed: int = 0) -> pd.DataFrame:
    """Two arms of 1,000 users with ``payers`` paying users each (order values near 40)."""
    rng = np.random.default_rng(seed)
    rows = []
    for name in ("control", "b"):
        paid = rng.lognormal(np.log(40) - 0.32, 0.8, payers)
        rows.append({"variant": name, "users": 1000, "conversions": payers, "payers": payers,
                     "revenue": paid.sum(), "revenue_sq": (paid ** 2).sum(), "log_revenue": np.log(paid).sum(),
                     "log_revenue_sq": (np.log(paid) ** 2).sum()})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("payers", [3, 4, 5])
def test_revenue_with_few_payers_reports_finite_quantities_or_refuses(payers):
    """With 3-5 payers the posterior mean of exp(mu + sigma^2 / 2) is infinite (the old report
    printed inf or 1e17..1e41, and a NaN lift): the report shows medians, or says why not."""
    data = _few_payers(payers)
    with pytest.raises(NotAnalysable, match=f"{payers} paying users; the revenue model needs at least 20"):
        ab.revenue_analysis(data, ABConfig(draws=20_000, seed=1))
    table = ab.revenue_analysis(data, ABConfig(draws=20_000, seed=1, min_payers=3)).set_index("variant")
    assert np.isfinite(table.loc["b"].drop("variant", errors="ignore").astype(float)).all()
    assert np.isfinite(table.loc["control", ["payers", "revenue per user", "posterior median", "P(best)"]]
                       .astype(float)).all()
    # medians stay on the scale of the data: P(pay) = payers / 1000 times an order value near 40
    assert table["posterior median"].to_numpy() == pytest.approx(table["revenue per user"].to_numpy(), rel=1.0)
    assert "posterior mean" not in table and "expected loss if shipped" not in table


