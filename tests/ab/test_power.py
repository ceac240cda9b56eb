"""Sample size and achieved power."""

from __future__ import annotations

import pytest

from helpers.ab import power
from helpers.ab.inputs import NotAnalysable
from tests.ab.builders import CONFIG, frame


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
