"""Frequentist, sequential and power analyses against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers.ab import frequentist as fq
from helpers.ab import power, sequential
from helpers.ab.inputs import ABConfig, NotAnalysable

CONFIG = ABConfig()


def frame(rows):
    out = pd.DataFrame(rows, columns=["variant", "users", "conversions", "revenue", "revenue_sq"])
    return out.assign(payers=out["conversions"], log_revenue=0.0, log_revenue_sq=0.0)


def test_z_test_matches_the_textbook_formula_and_holm():
    data = frame([("control", 1000, 100, 0, 0), ("b", 1000, 130, 0, 0), ("c", 1000, 95, 0, 0)])
    table = fq.conversion_tests(data, CONFIG).set_index("variant")
    p_pool = 230 / 2000
    z = (0.13 - 0.10) / np.sqrt(p_pool * (1 - p_pool) * 2 / 1000)
    assert table.loc["b", "z"] == pytest.approx(z)
    assert table.loc["b", "p_value"] == pytest.approx(2 * stats.norm.sf(z))
    assert table.loc["b", "ci_low"] < 0.03 < table.loc["b", "ci_high"]
    ordered = sorted(table["p_value"])
    assert table["p_adjusted"].min() == pytest.approx(2 * ordered[0])  # Holm: smallest times m
    chi = fq.chi_square_all(data)
    assert chi["dof"] == 2 and 0 < chi["p_value"] < 1


def test_degenerate_conversions_are_explained_not_crashed():
    data = frame([("control", 100, 0, 0, 0), ("b", 100, 0, 0, 0)])
    table = fq.conversion_tests(data, CONFIG)
    assert np.isnan(table.loc[0, "p_value"]) and "no user converted" in table.loc[0, "note"]
    assert not table.loc[0, "significant"]
    assert "undefined" in fq.chi_square_all(data)["note"]
    everyone = fq.conversion_tests(frame([("control", 10, 10, 0, 0), ("b", 10, 10, 0, 0)]), CONFIG)
    assert "every user converted" in everyone.loc[0, "note"]


def test_welch_from_summary_statistics_equals_scipy_on_the_raw_values():
    rng = np.random.default_rng(0)
    a = np.where(rng.random(500) < 0.1, rng.lognormal(3, 1, 500), 0.0)
    b = np.where(rng.random(600) < 0.12, rng.lognormal(3, 1, 600), 0.0)
    data = frame([("control", 500, int((a > 0).sum()), a.sum(), (a ** 2).sum()),
                  ("b", 600, int((b > 0).sum()), b.sum(), (b ** 2).sum())])
    users = pd.DataFrame({"variant": ["control"] * 500 + ["b"] * 600, "revenue": np.r_[a, b]})
    row = fq.revenue_tests(data, users, CONFIG).iloc[0]
    expected = stats.ttest_ind(b, a, equal_var=False)
    assert row["t"] == pytest.approx(expected.statistic) and row["p_value"] == pytest.approx(expected.pvalue)
    assert row["mw_p_value"] == pytest.approx(stats.mannwhitneyu(b, a).pvalue)
    assert row["ci_low"] < row["difference"] < row["ci_high"]
    flat = fq.revenue_tests(frame([("control", 10, 0, 0, 0), ("b", 10, 0, 0, 0)]),
                            pd.DataFrame({"variant": ["control"] * 10 + ["b"] * 10, "revenue": 0.0}), CONFIG)
    assert "undefined" in flat.loc[0, "note"]


def test_sprt_statistics_and_stop():
    low, high = sequential.sprt_bounds(0.05, 0.2)
    assert low == pytest.approx(np.log(0.2 / 0.95)) and high == pytest.approx(np.log(0.8 / 0.05))
    n = np.array([1000, 2000, 3000, 4000])
    path = sequential.sequential_path(n, n * 0.10, n, n * 0.13, delta=0.01, alpha=0.05, beta=0.2)
    var = 0.1 * 0.9 / n + 0.13 * 0.87 / n
    assert path["llr"].to_numpy() == pytest.approx((0.01 * 0.03 - 0.01 ** 2 / 2) / var)
    assert (np.diff(path["msprt_p"]) <= 0).all()
    stop = sequential.first_stop(path, 0.05)
    assert stop["sprt_conclusion"] == "lift" and stop["sprt_look"] == int(np.argmax(path["llr"] >= high))
    same = sequential.sequential_path(5 * n, 5 * n * 0.1, 5 * n, 5 * n * 0.1, delta=0.01, alpha=0.05, beta=0.2)
    assert sequential.first_stop(same, 0.05)["sprt_conclusion"] == "no lift" and sequential.first_stop(same, 0.05)["msprt_look"] is None


def test_daily_monitoring_names_the_stop_day():
    days = pd.date_range("2026-01-05", periods=10)
    rows = []
    for k, day in enumerate(days, start=1):
        rows += [{"variant": "control", "day": day, "users": 2000 * k, "conversions": 200 * k, "revenue": 0.0},
                 {"variant": "b", "day": day, "users": 2000 * k, "conversions": 240 * k, "revenue": 0.0}]
    result = sequential.sequential_monitoring(pd.DataFrame(rows), "control", CONFIG)
    paths, stops = result.paths, result.stops
    # burn-in of 2 days (control rate 10%) sizes the effect; the tests start on day 3
    assert len(paths) == 8 and paths["day"].min() == days[2] and stops.loc[0, "SPRT conclusion"] == "lift"
    assert stops.loc[0, "baseline rate"] == pytest.approx(0.10) and stops.loc[0, "MDE (absolute)"] == pytest.approx(0.01)
    assert stops.loc[0, "SPRT stop day"] in set(days[2:]) and stops.loc[0, "mSPRT stop day"] in set(days[2:])
    assert "first 2 days (burn-in" in result.method
    # after the burn-in the counts restart: day 3 holds one day of data, 2000 users per arm
    n = 2000
    var = 0.1 * 0.9 / n + 0.12 * 0.88 / n
    assert paths["llr"].iloc[0] == pytest.approx((0.01 * 0.02 - 0.01 ** 2 / 2) / var)
    planned = sequential.sequential_monitoring(pd.DataFrame(rows), "control", CONFIG, baseline_rate=0.08)
    assert len(planned.paths) == 10 and planned.stops.loc[0, "MDE (absolute)"] == pytest.approx(0.008)
    assert "pre-registered baseline rate" in planned.method
    with pytest.raises(NotAnalysable, match="control 'nobody'"):
        sequential.sequential_monitoring(pd.DataFrame(rows), "nobody", CONFIG)
    with pytest.raises(NotAnalysable, match="more than the 2 burn-in days"):
        sequential.sequential_monitoring(pd.DataFrame(rows[:4]), "control", CONFIG)


def _cumulative(daily: list[tuple[int, int, int, int]]) -> pd.DataFrame:
    """Cumulative rows from per-day (control users, control conversions, b users, b conversions)."""
    counts = np.cumsum(np.array(daily), axis=0)
    days = pd.date_range("2026-01-05", periods=len(daily))
    return pd.DataFrame([{"variant": v, "day": day, "users": int(row[k]), "conversions": int(row[k + 1]),
                          "revenue": 0.0} for day, row in zip(days, counts) for v, k in (("control", 0), ("b", 2))])


@pytest.mark.parametrize("baseline_rate", [None, 0.10])
def test_sequential_statistics_do_not_look_ahead(baseline_rate):
    """The statistics shown for days 1..7 are the same whatever days 8-14 hold. The old code sized
    the effect (and the mSPRT's mixing width) from the control's rate on the last day, so
    appending different days 8-14 changed the day 1..7 values and the stopping day."""
    rng = np.random.default_rng(4)
    first = [(2000, rng.binomial(2000, 0.10), 2000, rng.binomial(2000, 0.12)) for _ in range(7)]
    calm = [(2000, 200, 2000, 200)] * 7
    wild = [(2000, 600, 2000, 100)] * 7   # the control's rate triples after day 7
    a = sequential.sequential_monitoring(_cumulative(first + calm), "control", CONFIG, baseline_rate).paths
    b = sequential.sequential_monitoring(_cumulative(first + wild), "control", CONFIG, baseline_rate).paths
    seven = pd.date_range("2026-01-05", periods=7)
    pd.testing.assert_frame_equal(a[a["day"].isin(seven)].reset_index(drop=True),
                                  b[b["day"].isin(seven)].reset_index(drop=True))
    assert not a["llr"].equals(b["llr"])  # the later days do differ


def test_power_matches_statsmodels_and_the_usual_rule_of_thumb():
    n = power.required_users(0.10, 0.10, alpha=0.05, power=0.8)
    assert 14_000 < n < 15_000  # ~14,750 per arm for 10% -> 11%
    assert power.achieved_power(0.10, 0.10, 0.05, n) == pytest.approx(0.8, abs=0.005)
    assert power.required_users(0.10, 0.10, 0.05, 0.8, comparisons=3) > n
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        power.required_users(0.95, 0.10, 0.05, 0.8)
    table = power.power_table(frame([("control", 5000, 500, 0, 0), ("b", 4000, 420, 0, 0)]), CONFIG)
    assert table.loc[0, "smallest variant"] == 4000 and table.loc[0, "achieved power"] < 0.8
    with pytest.raises(NotAnalysable, match="cannot be powered"):
        power.power_table(frame([("control", 50, 0, 0, 0), ("b", 40, 1, 0, 0)]), CONFIG)
    planned = power.power_table(frame([("control", 5000, 500, 0, 0), ("b", 4000, 420, 0, 0)]), CONFIG, 0.10)
    assert planned.loc[0, "rate from"] == "plan" and planned.loc[0, "users needed per variant"] == n
