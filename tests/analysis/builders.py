"""Small daily frames and hypotheses shared by the tests of helpers.analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.analysis import hypotheses as hy
from helpers.data.series import DEGREE_DAY_BASE


def daily(y, x=None, workday=None, start: str = "2020-01-01") -> pd.DataFrame:
    """A :func:`helpers.analysis.hypotheses.daily_frame`-like frame: ``y``, degree-days
    ``x`` (temperature ``x + 18``) and the work-day flag; absent ones all-missing."""
    index = pd.date_range(start, periods=len(y), freq="1D")
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "temperature": np.nan, "workday": np.nan}, index=index)
    frame["degree_days"] = np.nan if x is None else np.asarray(x, dtype=float)
    if x is not None:
        frame["temperature"] = frame["degree_days"] + DEGREE_DAY_BASE
    if workday is not None:
        frame["workday"] = np.asarray(workday, dtype=float)
    return frame


def hypothesis(test: str, variables=("y",), alpha: float = 0.05, **params) -> hy.Hypothesis:
    return hy.Hypothesis(id=f"H_{test}", claim="c", test=test, variables=tuple(variables), transform="t",
                         alpha=alpha, expected="e", params=params)
