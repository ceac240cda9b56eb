"""Multiple-testing adjustment against hand-computed answers (helpers.core.stats)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.core.stats import adjust_p_values

P = [0.01, 0.04, 0.03, 0.005]


def test_holm_known_answer():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; the step-down
    # adjustment never decreases, so the last becomes max(0.04, 0.06) = 0.06
    np.testing.assert_allclose(adjust_p_values(P, "holm"), [0.03, 0.06, 0.06, 0.02])


def test_benjamini_hochberg_known_answer():
    # sorted times 4/1, 4/2, 4/3, 4/4 = 0.02, 0.02, 0.04, 0.04; the running minimum from the largest
    np.testing.assert_allclose(adjust_p_values(P, "fdr_bh"), [0.02, 0.04, 0.04, 0.02])


def test_holm_is_the_default():
    np.testing.assert_allclose(adjust_p_values(P), [0.03, 0.06, 0.06, 0.02])


@pytest.mark.parametrize("method, expected", [
    ("holm", [1.0, 1.0]),  # 2 x 0.5 = 1.0, and 0.6 is raised to it
    ("fdr_bh", [0.6, 0.6]),  # 2/1 x 0.5 = 1.0 > 0.6, the running minimum
])
def test_adjusted_values_are_capped_and_monotone(method, expected):
    np.testing.assert_allclose(adjust_p_values([0.5, 0.6], method), expected)


def test_one_test_is_not_adjusted():
    assert adjust_p_values([0.03], "holm").tolist() == [0.03]
    assert adjust_p_values([0.03], "fdr_bh").tolist() == [0.03]


@pytest.mark.parametrize("method, expected", [("holm", [0.02, np.nan, 0.04]), ("fdr_bh", [0.02, np.nan, 0.04])])
def test_nan_is_left_out_of_the_family(method, expected):
    """Two tested p-values (0.01, 0.04): the family has two members, not three."""
    np.testing.assert_allclose(adjust_p_values([0.01, np.nan, 0.04], method), expected)


def test_nothing_tested():
    assert np.isnan(adjust_p_values([np.nan, np.nan])).all()
    assert adjust_p_values([]).shape == (0,)


def test_unknown_correction_is_refused():
    with pytest.raises(ValueError, match=r"correction must be one of \('holm', 'fdr_bh'\), got 'bonferroni'"):
        adjust_p_values(P, "bonferroni")  # type: ignore[arg-type]
