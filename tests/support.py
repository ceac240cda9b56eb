"""Shared test data builders and paths."""

from __future__ import annotations

from pathlib import Path

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
