"""Frequentist, sequential and power analyses against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers.ab import frequentist as fq
from tests.ab.builders import CONFIG, frame


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


