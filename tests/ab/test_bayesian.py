"""Bayesian A/B analysis: known answers, degenerate inputs, PyMC against the closed form."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.ab import bayesian as ab
from helpers.ab import calibration as abcalibration
from helpers.ab import mcmc
from helpers.ab import report as abreport
from helpers.ab.inputs import ABConfig, NotAnalysable
from helpers.core.experiment_specs import ExperimentPlan

FAST = ABConfig(draws=20_000, pymc_draws=400, pymc_chains=2, seed=5)


def summary(*rows) -> pd.DataFrame:
    """(variant, users, conversions[, revenue stats]) rows, control first."""
    frame = pd.DataFrame(rows, columns=["variant", "users", "conversions"])
    rng = np.random.default_rng(0)
    stats = []
    for n, c in zip(frame["users"], frame["conversions"]):
        logs = rng.normal(3.5, 0.8, int(c))
        stats.append({"payers": int(c), "log_revenue": logs.sum(), "log_revenue_sq": (logs ** 2).sum(),
                      "revenue": np.exp(logs).sum(), "revenue_sq": (np.exp(logs) ** 2).sum()})
    return pd.concat([frame, pd.DataFrame(stats)], axis=1)


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


def test_pymc_and_arviz_import_without_the_daily_refactor_notice(tmp_path):
    # ArviZ warns on the first import of each day, remembered in the user cache: start from an empty one.
    code = "from helpers.ab import mcmc; mcmc.pymc(); mcmc.arviz()"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "arviz").exists()  # the notice did fire, and was silenced


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


def test_pymc_agrees_with_the_closed_form_and_converges():
    data = summary(("control", 3000, 300), ("b", 3000, 345), ("c", 3000, 290))
    full = ABConfig(draws=20_000, pymc_draws=1000, pymc_chains=4, seed=5)  # the full profile's sampler
    idata = mcmc.pymc_conversion(data, full)
    diagnostics = mcmc.diagnostics(idata, ["p"])
    assert mcmc.converged(diagnostics) and (diagnostics["divergences"] == 0).all()
    check = mcmc.cross_check(data, idata, full)
    assert check["agree"].all(), check
    assert len(check) == 5


def test_pymc_revenue_model_matches_its_closed_form():
    data = summary(("control", 2000, 200), ("b", 2000, 240))
    idata = mcmc.pymc_revenue(data, FAST)
    closed = ab.revenue_analysis(data, FAST).set_index("variant")["posterior median"]
    nuts = idata.posterior["revenue_per_user"].median(("chain", "draw")).to_series()
    assert nuts.to_numpy() == pytest.approx(closed.loc[nuts.index].to_numpy(), rel=0.03)
    assert (mcmc.diagnostics(idata, ["revenue_per_user"])["r_hat"] < 1.02).all()


def _data(rows, days=4, plan=None):
    frame = summary(*rows)
    cumulative = pd.concat([
        pd.DataFrame({"variant": r[0], "day": pd.date_range("2026-01-05", periods=days),
                      "users": np.linspace(r[1] / days, r[1], days).round().astype(int),
                      "conversions": np.linspace(r[2] / days, r[2], days).round().astype(int), "revenue": 0.0})
        for r in rows], ignore_index=True)
    users = pd.DataFrame({"variant": np.repeat(frame["variant"], frame["users"]), "revenue": 0.0})
    info = {"experiment_id": "x", "control": rows[0][0], "description": "", "source": "test",
            "updated_at": "2026-01-01", "plan": plan}
    return abreport.ExperimentData(info, frame, cumulative, users)


def test_report_runs_every_part_and_turns_failures_into_sentences():
    data = _data([("control", 4000, 400), ("b", 4000, 470)])
    report = abreport.analyse(data, FAST)
    assert {"conversion", "revenue", "conversion_tests", "sequential", "power", "beat_over_time"} <= set(report.parts)
    text = abreport.decision_summary(report)
    assert "**b** beats control" in text and "users to detect" in text
    assert len(abreport.data_hash(data)) == 64 and abreport.provenance_rows(data)["experiment"] == "x"
    assert len(abreport.plot_lift(report).data) == 1
    assert len(abreport.plot_beat_over_time(report).data) == 1
    assert len(abreport.plot_sequential(report).data) == 2

    empty = abreport.analyse(_data([("control", 0, 0), ("b", 50, 5)]), FAST)
    assert empty.get("conversion") is None
    assert "cannot be analysed: the control variant" in abreport.decision_summary(empty)
    assert "has no users" in empty.show("power").data


def test_report_pymc_part_and_a_revenue_model_without_payers():
    report = abreport.analyse(_data([("control", 1500, 150), ("b", 1500, 180)]), FAST)
    abreport.run_pymc(report)
    assert report.get("cross_check")["agree"].all()
    diagnostics = report.get("revenue_diagnostics")
    assert diagnostics.loc["revenue_per_user[b]", "median"] == pytest.approx(
        diagnostics.loc["revenue_per_user[b]", "closed-form median"], rel=0.05)
    assert abreport.plot_posterior(report) is not None
    few = abreport.analyse(_data([("control", 100, 2), ("b", 100, 1)]), FAST)
    abreport.run_pymc(few)
    assert few.get("revenue_diagnostics") is None
    assert "'control', 'b' have fewer than 20 paying users (ab_min_payers)" in few.show("revenue_diagnostics").data


def test_the_report_tests_the_sample_ratio_against_the_planned_split():
    """A 70/30 experiment delivered exactly 7000/3000 is healthy; the old report tested every
    experiment against equal shares and flagged it (chi-square 1600)."""
    rows = [("control", 7000, 700), ("b", 3000, 300)]
    planned = abreport.analyse(_data(rows, plan=ExperimentPlan("x", "control", {"control": 0.7, "b": 0.3})), FAST)
    assert not planned.srm["mismatch"] and planned.srm["chi2"] == pytest.approx(0.0)
    assert "planned split 70%/30%" in planned.srm["message"]
    unplanned = abreport.analyse(_data(rows), FAST)  # no allocation stored: equal shares, and it says so
    assert unplanned.srm["mismatch"] and unplanned.srm["chi2"] == pytest.approx(1600.0)
    assert "no planned allocation is stored" in unplanned.srm["message"]


def test_a_bug_in_an_analysis_step_fails_the_report(monkeypatch):
    """Only NotAnalysable becomes a sentence; a ValueError from a bug must propagate (the old
    report caught ValueError and ZeroDivisionError and printed them in italics)."""
    def broken(*args, **kwargs):
        raise ValueError("bug: operands could not be broadcast together")

    monkeypatch.setattr(abreport.fq, "conversion_tests", broken)
    with pytest.raises(ValueError, match="bug: operands"):
        abreport.analyse(_data([("control", 4000, 400), ("b", 4000, 470)]), FAST)
    assert not issubclass(NotAnalysable, ValueError)


def test_calibration_checks_pass_at_test_size():
    # The tolerance is three binomial standard errors: these fail if a method is miscalibrated.
    table = abcalibration.calibration_table(sims=600, seed=11)
    assert table["passes"].all(), table
    assert set(table["check"]).issuperset({"95% HDI covers the true lift", "SPRT type II error (lift = MDE)"})


def test_provenance_names_the_load_run(tmp_path):
    data = _data([("control", 100, 10), ("b", 100, 12)])
    report = tmp_path / "experiments.json"
    report.write_text('[{"run_id": "r1", "rows_loaded": 200, "rows_quarantined": 0, "experiments": ["x"]}]')
    assert abreport.provenance_rows(data, str(report))["load run"].startswith("r1 (200 rows loaded")
