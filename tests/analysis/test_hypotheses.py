"""Each test wrapper on synthetic series with a known answer; the family adjustment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from helpers.analysis import hypotheses as hy
from helpers.data.series import DEGREE_DAY_BASE
from helpers.core.paths import project_root

N = 400


def _frame(y, x=None, workday=None) -> pd.DataFrame:
    index = pd.date_range("2020-01-01", periods=len(y), freq="1D")
    frame = pd.DataFrame({"y": y, "temperature": np.nan, "workday": np.nan}, index=index)
    if x is not None:
        frame["degree_days"] = x
        frame["temperature"] = x + DEGREE_DAY_BASE
    else:
        frame["degree_days"] = np.nan
    if workday is not None:
        frame["workday"] = workday
    return frame


def _h(test, variables=("y",), **params) -> hy.Hypothesis:
    return hy.Hypothesis(id=f"H_{test}", claim="c", test=test, variables=tuple(variables), transform="t",
                         alpha=0.05, expected="e", params=params)


def _run(frame, h):
    row = hy.run_registry(frame, [h]).iloc[0]
    return row


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


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_family_adjustment_matches_statsmodels(rng, method):
    x = rng.normal(size=N)
    frame = _frame(np.cumsum(rng.normal(size=N)), x, workday=(np.arange(N) % 7 < 5).astype(float))
    family = [_h("stationarity"), _h("correlation", ("y", "degree_days")),
              _h("group_difference", ("y", "workday")), _h("structural_break")]
    table = hy.run_registry(frame, family, correction=method)
    expected = multipletests(table["p_value"].to_numpy(), alpha=0.05, method=method)[1]
    np.testing.assert_allclose(table["p_adjusted"].to_numpy(dtype=float), expected)


def test_missing_covariate_is_not_tested_and_left_out_of_the_family(rng):
    frame = _frame(rng.normal(size=N))  # no temperature, no workday
    family = [_h("stationarity"), _h("granger", ("degree_days", "y")), _h("group_difference", ("y", "workday"))]
    table = hy.run_registry(frame, family).set_index("id")
    assert table.loc["H_granger", "status"] == "not tested"
    assert "no 'degree_days' data" in table.loc["H_granger", "interpretation"]
    assert table.loc["H_stationarity", "p_adjusted"] == pytest.approx(table.loc["H_stationarity", "p_value"])


def test_short_series_is_not_tested(rng):
    row = _run(_frame(rng.normal(size=20)), _h("stationarity"))
    assert row["status"] == "not tested" and "at least 30" in row["interpretation"]


def test_project_registry_loads():
    family, hypotheses = hy.load_registry(project_root() / "hypotheses.yaml")
    assert family["correction"] == "holm" and len(hypotheses) >= 7
    assert {h.test for h in hypotheses} == set(hy.TESTS)
    assert len(hy.registry_hash(project_root() / "hypotheses.yaml")) == 64


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
