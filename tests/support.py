"""Shared test data builders and paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).parent / "fixtures"
DQ = FIXTURES / "dq"


def half_hourly(n: int, start: str = "2014-01-01", seed: int = 0) -> pd.DataFrame:
    """A small synthetic file in the default column layout."""
    rng = pd.Series(range(n))
    return pd.DataFrame({
        "timestamp": pd.date_range(start, periods=n, freq="30min").strftime("%Y-%m-%d %H:%M:%S"),
        "demand": (4 + (rng % 48) / 48 + seed).round(4).astype(str),
        "temperature": (15 + (rng % 10)).astype(float).astype(str),
        "workday": ((rng // 48) % 7 < 5).astype(int).astype(str),
    })


def daily_series(n=140, trend=0.0, season=10.0, noise=1.0, seed=0) -> pd.DataFrame:
    """A daily series with a weekly sine, optional trend, a work-day flag and degree-days."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2020-01-01", periods=n, freq="1D")
    t = np.arange(n)
    y = 100 + trend * t + season * np.sin(2 * np.pi * t / 7) + rng.normal(0, noise, n)
    return pd.DataFrame({"unique_id": "s", "ds": ds, "y": y, "workday": (ds.dayofweek < 5).astype(float),
                         "degree_days": rng.uniform(0, 10, n)})
