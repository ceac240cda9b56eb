"""Each test wrapper on synthetic series with a known answer; the family adjustment; the
quantities the report plots (weekly deviations, the Granger pair, the CUSUM path); every
branch of the interpretation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.diagnostic import breaks_cusumolsresid

from helpers.analysis import hypotheses as hy
from helpers.core.paths import project_root
from tests.analysis.builders import daily as _frame
from tests.analysis.builders import hypothesis as _h

N = 400


def _run(frame, h):
    return hy.run_registry(frame, [h]).iloc[0]


@pytest.fixture
def rng():
    return np.random.default_rng(20141)


def test_white_noise_is_stationary_random_walk_is_not(rng):
    assert _run(_frame(rng.normal(size=N)), _h("stationarity"))["decision"] == "stationary"
    assert _run(_frame(np.cumsum(rng.normal(size=N))), _h("stationarity"))["decision"] == "unit root"


def test_lagged_x_granger_causes_y_independent_does_not(rng):
    x = rng.normal(size=N)
    y = np.r_[0, 0.8 * x[:-1]] + rng.normal(scale=0.5, size=N)
    h = _h("granger", ("degree_days", "y"), max_lag=5)
    assert _run(_frame(y, x), h)["decision"] == "reject H0"
    assert _run(_frame(rng.normal(size=N), x), h)["decision"] == "do not reject H0"


def test_shared_stochastic_trend_is_cointegrated_independent_walks_are_not(rng):
    trend = np.cumsum(rng.normal(size=N))
    h = _h("cointegration", ("y", "degree_days"))
    shared = _run(_frame(trend + rng.normal(size=N), 0.5 * trend + rng.normal(size=N)), h)
    assert shared["decision"] == "reject H0" and shared["detail"]["johansen rejects r=0"]
    independent = _run(_frame(np.cumsum(rng.normal(size=N)), np.cumsum(rng.normal(size=N))), h)
    assert independent["decision"] == "do not reject H0" and not independent["detail"]["johansen rejects r=0"]


def test_planted_level_shift_is_a_break_none_is_not(rng):
    shifted = rng.normal(size=N) + np.r_[np.zeros(N // 2), np.full(N - N // 2, 1.5)]
    assert _run(_frame(shifted), _h("structural_break"))["decision"] == "reject H0"
    assert _run(_frame(rng.normal(size=N)), _h("structural_break"))["decision"] == "do not reject H0"


def test_weekday_pattern_is_weekly_seasonality_noise_is_not(rng):
    weekday_effect = np.tile([1, 1, 1, 1, 1, -2.5, -2.5], N // 7 + 1)[:N]
    h = _h("weekly_seasonality", period=7)
    seasonal = _run(_frame(weekday_effect + rng.normal(size=N)), h)
    assert seasonal["decision"] == "reject H0" and seasonal["effect_size"] > 0.3
    assert _run(_frame(rng.normal(size=N)), h)["decision"] == "do not reject H0"


def test_group_shift_is_detected_with_its_direction(rng):
    flag = (np.arange(N) % 7 < 5).astype(float)
    y = rng.normal(size=N) + 2 * flag
    row = _run(_frame(y, workday=flag), _h("group_difference", ("y", "workday")))
    assert row["decision"] == "reject H0" and row["effect_size"] > 0.5
    null = _run(_frame(rng.normal(size=N), workday=flag), _h("group_difference", ("y", "workday")))
    assert null["decision"] == "do not reject H0"


def test_correlation_known_answer(rng):
    x = rng.normal(size=N)
    row = _run(_frame(2 * x + rng.normal(size=N), x), _h("correlation", ("y", "degree_days")))
    assert row["decision"] == "reject H0" and row["effect_size"] > 0.7


def _fixed(p_value):
    """A stand-in test that finds ``p_value``, so the family adjustment has a hand-computed answer."""
    return lambda frame, h: hy.HypothesisOutcome(statistic=1.0, p_value=p_value)


def _not_testable(frame, h):
    raise hy.NotTestable("no data")


REJECT, KEEP = "reject H0", "do not reject H0"


@pytest.mark.parametrize("method, expected, decisions", [
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, max(0.04, 0.06)
    ("holm", [0.03, 0.06, 0.06, 0.02], [REJECT, KEEP, KEEP, REJECT]),
    # BH: times 4/1, 4/2, 4/3, 4/4 -> 0.02, 0.02, 0.04, 0.04, then the running minimum from the top
    ("fdr_bh", [0.02, 0.04, 0.04, 0.02], [REJECT] * 4),
])
def test_family_adjustment_known_answers(monkeypatch, rng, method, expected, decisions):
    """Four tested hypotheses with p = 0.01, 0.04, 0.03, 0.005; a fifth is not tested and is not
    counted in the family."""
    tests = ("weekly_seasonality", "group_difference", "correlation", "structural_break")
    for test, p_value in zip(tests, (0.01, 0.04, 0.03, 0.005)):
        monkeypatch.setitem(hy.TESTS, test, _fixed(p_value))
    monkeypatch.setitem(hy.TESTS, "granger", _not_testable)
    family = [_h(test) for test in tests] + [_h("granger", ("degree_days", "y"))]
    table = hy.run_registry(_frame(rng.normal(size=N)), family, correction=method)
    np.testing.assert_allclose(table["p_adjusted"].iloc[:4].to_numpy(dtype=float), expected)
    assert table["decision"].iloc[:4].tolist() == decisions
    assert table["status"].iloc[4] == "not tested" and np.isnan(table["p_adjusted"].iloc[4])


def test_missing_covariate_is_not_tested_and_left_out_of_the_family(rng):
    frame = _frame(rng.normal(size=N))  # no temperature, no workday
    family = [_h("stationarity"), _h("granger", ("degree_days", "y")), _h("group_difference", ("y", "workday"))]
    table = hy.run_registry(frame, family).set_index("id")
    assert table.loc["H_granger", "status"] == "not tested"
    assert "no 'degree_days' data" in table.loc["H_granger", "interpretation"]
    assert table.loc["H_stationarity", "p_adjusted"] == pytest.approx(table.loc["H_stationarity", "p_value"])


def test_daily_frame_adds_degree_days_and_drops_missing_days():
    view = pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2020-01-01", periods=3), "y": [10.0, np.nan, 12.0],
                         "temperature": [12.0, 18.0, 25.5], "workday": [1.0, 1.0, 0.0], "filled": False})
    frame = hy.daily_frame(view)
    assert list(frame.columns) == ["y", "temperature", "workday", "degree_days"]
    assert list(frame.index) == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-03")]
    assert frame["degree_days"].tolist() == [6.0, 7.5]  # |12 - 18| and |25.5 - 18|


def test_group_difference_needs_five_days_in_each_group(rng):
    flag = np.r_[np.ones(N - 4), np.zeros(4)]
    row = _run(_frame(rng.normal(size=N), workday=flag), _h("group_difference", ("y", "workday")))
    assert row["status"] == "not tested"
    assert row["interpretation"] == ("Not tested: H_group_difference needs at least 5 days in each group, "
                                     f"got {N - 4} and 4.")


def test_short_series_is_not_tested(rng):
    row = _run(_frame(rng.normal(size=20)), _h("stationarity"))
    assert row["status"] == "not tested" and "at least 30" in row["interpretation"]


def test_a_constant_series_is_not_tested_by_any_hypothesis(rng):
    """ADF raised "Invalid input, x is constant" and failed the whole hypothesis notebook."""
    family, registered = hy.load_registry(project_root() / "hypotheses.yaml")
    frame = _frame(np.full(N, 4.0), x=rng.uniform(0, 10, N), workday=np.arange(N) % 7 < 5)
    table = hy.run_registry(frame, registered, family["correction"])
    assert (table["status"] == "not tested").all()
    needs_y = table[table["interpretation"].str.contains("'y' is 4 on all")]
    assert len(needs_y) >= 5, table["interpretation"].tolist()
    assert needs_y["interpretation"].str.fullmatch(
        rf"Not tested: 'y' is 4 on all {N} days; \S+ needs it to vary\.").all()


def test_project_registry_loads():
    family, hypotheses = hy.load_registry(project_root() / "hypotheses.yaml")
    assert family["correction"] == "holm" and len(hypotheses) >= 7
    assert {h.test for h in hypotheses} == set(hy.TESTS)


def test_registry_hash_is_the_file_s_sha256(tmp_path):
    path = tmp_path / "h.yaml"
    path.write_bytes(b"abc")  # the FIPS 180-2 example
    assert hy.registry_hash(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("text, message", [
    ("hypotheses: 3", "expected a mapping"),
    ("correction: bonferroni\nhypotheses: []", "correction must be"),
    ("hypotheses:\n  - id: a\n    claim: c", "lacks"),
    ("hypotheses:\n  - {id: a, claim: c, test: magic, variables: [y], transform: t, expected: e}", "unknown test"),
    ("hypotheses:\n  - {id: a, claim: c, test: stationarity, variables: [y], transform: t, expected: e}\n"
     "  - {id: a, claim: c, test: stationarity, variables: [y], transform: t, expected: e}", "duplicate"),
    ("hypotheses: [unclosed", "cannot read"),
])
def test_registry_errors(tmp_path, text, message):
    path = tmp_path / "h.yaml"
    path.write_text(text)
    with pytest.raises(hy.RegistryError, match=message):
        hy.load_registry(path)


# -- what the report plots: the quantities the tests judge ----------------------------------
def test_weekly_deviations_recover_a_zero_sum_weekday_pattern_on_a_trend():
    pattern = np.array([3.0, 2, 1, 0, -1, -2, -3])
    y = pd.Series(0.5 * np.arange(70) + np.tile(pattern, 10), index=pd.date_range("2020-01-06", periods=70))
    deviations = hy.weekly_deviations(y, 7)
    # the centred 7-day mean of a line plus a zero-sum weekly pattern is the line itself
    assert len(deviations) == 70 - 6 and deviations.index[0] == y.index[3]
    np.testing.assert_allclose(deviations.to_numpy(), np.tile(pattern, 10)[3:-3], atol=1e-12)


def test_cusum_path_of_a_planted_step_is_a_triangle_with_a_known_peak():
    """y = +1 for four weeks then -1 for four: every weekday mean is 0, so the residuals are y,
    s2 = 56 / (56 - 7) and the path is cumsum(y) / sqrt(56 * s2) = cumsum(y) / 8."""
    y = np.r_[np.ones(28), -np.ones(28)]
    frame = _frame(y)
    path = hy.cusum_path(frame["y"])
    np.testing.assert_allclose(path.to_numpy(), np.cumsum(y) / 8, atol=1e-12)
    assert path.max() == pytest.approx(3.5) and path.iloc[-1] == pytest.approx(0, abs=1e-12)
    outcome = hy.structural_break_test(frame, _h("structural_break"))
    assert outcome.statistic == pytest.approx(3.5)
    assert outcome.detail["largest cumulative deviation at"] == str(frame.index[27].date())


def test_cusum_path_peak_is_statsmodels_statistic(rng):
    frame = _frame(rng.normal(size=N) + np.linspace(0, 1, N) + np.tile([0, 0, 0, 0, 0, -2, -2.0], N // 7 + 1)[:N])
    dummies = pd.get_dummies(frame.index.dayofweek, drop_first=True, dtype=float).to_numpy()
    design = np.column_stack([np.ones(N), dummies])
    residuals = frame["y"].to_numpy() - design @ np.linalg.lstsq(design, frame["y"].to_numpy(), rcond=None)[0]
    statistic, p_value, _ = breaks_cusumolsresid(residuals, ddof=8 - 1)
    path = hy.cusum_path(frame["y"])
    assert path.abs().max() == pytest.approx(statistic, rel=1e-12)
    row = _run(frame, _h("structural_break"))
    assert row["statistic"] == pytest.approx(statistic, rel=1e-12) and row["p_value"] == pytest.approx(p_value)


def test_granger_pair_is_differenced_when_adf_finds_unit_roots(rng):
    x, y = np.cumsum(rng.normal(size=N)), np.cumsum(rng.normal(size=N))
    frame = _frame(y, x)
    pair, label = hy.granger_pair(frame, _h("granger", ("degree_days", "y")))
    assert label == "differenced 1x" and list(pair.columns) == ["y", "degree_days"]
    pd.testing.assert_frame_equal(pair, frame[["y", "degree_days"]].diff().dropna())
    row = _run(frame, _h("granger", ("degree_days", "y"), max_lag=3))
    assert row["detail"]["transformation"] == "differenced 1x"


def test_granger_pair_stays_in_levels_when_both_are_stationary(rng):
    frame = _frame(rng.normal(size=N), rng.normal(size=N))
    pair, label = hy.granger_pair(frame, _h("granger", ("degree_days", "y")))
    assert label == "levels"
    pd.testing.assert_frame_equal(pair, frame[["y", "degree_days"]])


def test_granger_pair_of_an_integrated_twice_series_is_differenced_twice(rng):
    frame = _frame(np.cumsum(np.cumsum(rng.normal(size=N))), rng.normal(size=N))
    pair, label = hy.granger_pair(frame, _h("granger", ("degree_days", "y")))
    assert label == "differenced 2x"
    pd.testing.assert_frame_equal(pair, frame[["y", "degree_days"]].diff().diff().dropna())


# -- interpretation: every branch --------------------------------------------------------------
def _stationarity(kpss_p):
    return hy.HypothesisOutcome(-3.0, 0.01, detail={"kpss_p_value (clipped to [0.01, 0.10])": kpss_p})


@pytest.mark.parametrize("p_adjusted, kpss_p, decision, words, implication", [
    (0.01, 0.10, "stationary", "ADF rejects a unit root and KPSS does not reject", "no differencing needed (d = 0)"),
    (0.20, 0.01, "unit root", "behaves like a random walk", "Difference once (d = 1)"),
    (0.01, 0.01, "difference-stationary or trending", "Both reject", "compare d = 0 and d = 1"),
    (0.20, 0.10, "inconclusive", "Neither test rejects", "Prefer the simpler model"),
])
def test_interpret_stationarity_reads_adf_with_kpss(p_adjusted, kpss_p, decision, words, implication):
    got = hy.interpret(_h("stationarity"), _stationarity(kpss_p), p_adjusted)
    assert got[0] == decision and words in got[1] and implication in got[2]
    sign = "below" if p_adjusted < 0.05 else "not below"
    assert f"(adjusted p = {p_adjusted:.3g}, {sign} alpha = 0.05; KPSS p = {kpss_p:.3g})." in got[1]


TWO = {"granger": ("temp", "load"), "group_difference": ("load", "holiday"), "correlation": ("load", "temp"),
       "cointegration": ("load", "temp")}


@pytest.mark.parametrize("test, reject, head, implication", [
    ("weekly_seasonality", True, "Demand differs by day of the week beyond its weekly mean",
     "Use a seasonal period of 7"),
    ("weekly_seasonality", False, "No evidence that demand differs by day of the week",
     "A weekly seasonal term is not supported"),
    ("granger", True, "Past temp improves the prediction of load beyond its own past",
     "Include temp (lags) as a regressor"),
    ("granger", False, "Past temp adds no predictive information about load", "temp lags can be left out"),
    ("group_difference", True, "load differs between holiday = 1 and 0", "Add holiday as a regressor"),
    ("group_difference", False, "No evidence that load differs by holiday", "holiday is not needed as a regressor"),
    ("structural_break", True, "The mean level is not stable over the sample (CUSUM crosses its bound)",
     "Weigh recent data more"),
    ("structural_break", False, "No evidence of a structural break in the mean level",
     "A single model over the whole sample"),
    ("cointegration", True, "The pair shares a long-run equilibrium (Engle-Granger)",
     "An error-correction term is worth trying"),
    ("cointegration", False, "No evidence of a long-run equilibrium between the pair",
     "without an error-correction term"),
    ("correlation", True, "load and temp are monotonically related", "temp is a candidate regressor"),
    ("correlation", False, "No evidence of a monotonic relation between load and temp", "temp is unlikely to help"),
])
def test_interpret_every_test_both_ways(test, reject, head, implication):
    h = _h(test, TWO.get(test, ("y",)))
    detail = {"integration order (ADF)": {"load": "I(1) or higher", "temp": "I(1) or higher"}}
    # 0.05 is not below alpha = 0.05: an adjusted p-value equal to alpha does not reject
    p_adjusted = 0.001 if reject else 0.05
    decision, text, advice = hy.interpret(h, hy.HypothesisOutcome(1.0, p_adjusted, detail=detail), p_adjusted)
    assert decision == ("reject H0" if reject else "do not reject H0")
    sign = "below" if reject else "not below"
    assert text == f"{head} (adjusted p = {p_adjusted:.3g}, {sign} alpha = 0.05)."
    assert implication in advice


def test_interpret_reports_the_effect_size_when_there_is_one():
    h = _h("correlation", ("load", "temp"))
    with_effect = hy.interpret(h, hy.HypothesisOutcome(0.6, 0.001, 0.61234, "Spearman rho"), 0.001)[1]
    assert with_effect.endswith("(adjusted p = 0.001, below alpha = 0.05). Spearman rho = 0.612.")
    tiny = hy.interpret(h, hy.HypothesisOutcome(0.6, 3e-40, 0.61234, "Spearman rho"), 3.05e-40)[1]
    assert "(adjusted p < 0.001, below alpha = 0.05)" in tiny and "e-" not in tiny  # no exponent for a person
    without = hy.interpret(h, hy.HypothesisOutcome(0.6, 0.001), 0.001)[1]
    assert without.endswith("(adjusted p = 0.001, below alpha = 0.05).")


@pytest.mark.parametrize("orders, cautioned", [
    ({"load": "I(1) or higher", "temp": "I(1) or higher"}, False),
    ({"load": "I(1) or higher", "temp": "I(0)"}, True),
    ({"load": "I(0)", "temp": "I(0)"}, True),
])
def test_interpret_cointegration_cautions_unless_both_are_integrated(orders, cautioned):
    outcome = hy.HypothesisOutcome(-4.0, 0.001, detail={"integration order (ADF)": orders})
    text = hy.interpret(_h("cointegration", ("load", "temp")), outcome, 0.001)[1]
    assert ("Caution: cointegration presumes both series are I(1)" in text) is cautioned
    if cautioned:
        assert f"load {orders['load']}, temp {orders['temp']}" in text


def test_the_results_record_says_which_null_hypotheses_were_rejected(rng, monkeypatch, tmp_path):
    """What the reports' landing page reads (helpers.app.findings): rejected at each hypothesis' own alpha."""
    import json

    for test, p_value in (("weekly_seasonality", 0.001), ("correlation", 0.4)):
        monkeypatch.setitem(hy.TESTS, test, _fixed(p_value))
    monkeypatch.setitem(hy.TESTS, "granger", _not_testable)
    family = [_h("weekly_seasonality"), _h("correlation"), _h("granger", ("degree_days", "y"))]
    table = hy.run_registry(_frame(rng.normal(size=N)), family)
    registry = tmp_path / "hypotheses.yaml"
    registry.write_text("family: {}\n")
    record = hy.results_record(table, family, {"name": "f", "correction": "holm"}, registry)
    path = hy.write_results(record, tmp_path / "out" / "results.json")
    assert json.loads(path.read_text()) == record and record["registry_sha256"] == hy.registry_hash(registry)
    assert [(h["id"], h["tested"], h["rejected"], h["decision"]) for h in record["hypotheses"]] == [
        ("H_weekly_seasonality", True, True, "reject H0"), ("H_correlation", True, False, "do not reject H0"),
        ("H_granger", False, False, "not tested")]
    assert record["hypotheses"][0]["p_adjusted"] == pytest.approx(0.002) and record["hypotheses"][2]["p_adjusted"] is None
