"""Calibration of the A/B methods by simulation."""

from __future__ import annotations

from helpers.ab import calibration as abcalibration


def test_calibration_checks_pass_at_test_size():
    # The tolerance is three binomial standard errors: these fail if a method is miscalibrated.
    table = abcalibration.calibration_table(sims=600, seed=11)
    assert table["passes"].all(), table
    assert set(table["check"]).issuperset({"95% HDI covers the true lift", "SPRT type II error (lift = MDE)"})
