"""Power of the two-proportion z-test: users per variant needed to detect the MDE
(statsmodels), and the power an experiment reached.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from helpers.ab.inputs import ABConfig, NotAnalysable, check_analysable


def required_users(baseline: float, mde: float, alpha: float, power: float, comparisons: int = 1) -> int:
    """Users per variant for a two-sided z-test to detect a relative lift ``mde`` over ``baseline``
    (alpha Bonferroni-split over ``comparisons``)."""
    if not 0 < baseline < 1 or not 0 < baseline * (1 + mde) < 1:
        raise ValueError(f"baseline {baseline} and lift {mde} must give rates strictly between 0 and 1")
    effect = proportion_effectsize(baseline * (1 + mde), baseline)
    n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha / comparisons, power=power, ratio=1.0,
                                     alternative="two-sided")
    return int(np.ceil(n))


def achieved_power(baseline: float, mde: float, alpha: float, users: int, comparisons: int = 1) -> float:
    """Power of the z-test with ``users`` per variant to detect the MDE (not the observed lift)."""
    effect = proportion_effectsize(baseline * (1 + mde), baseline)
    return float(NormalIndPower().power(effect_size=effect, nobs1=users, alpha=alpha / comparisons, ratio=1.0,
                                        alternative="two-sided"))


def power_table(summary: pd.DataFrame, config: ABConfig, baseline_rate: float | None = None) -> pd.DataFrame:
    """Users per variant needed for the MDE and the power reached, from the pre-registered
    ``baseline_rate`` when there is one, else from the control's observed rate."""
    summary = check_analysable(summary)
    observed = summary["conversions"].iloc[0] / summary["users"].iloc[0]
    baseline = observed if baseline_rate is None else baseline_rate
    comparisons = len(summary) - 1
    if not 0 < baseline < 1 or not baseline * (1 + config.mde) < 1:
        raise NotAnalysable(f"the control's conversion rate is {baseline:.0%} and the MDE {config.mde:.0%}: a lift "
                            "to a rate of 100% or more cannot be powered")
    needed = required_users(baseline, config.mde, config.alpha, config.power, comparisons)
    smallest = int(summary["users"].min())
    return pd.DataFrame([{
        "control rate": baseline, "rate from": "plan" if baseline_rate is not None else "observed",
        "MDE (relative)": config.mde, "alpha per comparison": config.alpha / comparisons,
        "target power": config.power, "users needed per variant": needed, "smallest variant": smallest,
        "achieved power": achieved_power(baseline, config.mde, config.alpha, smallest, comparisons),
    }])
