"""Statistics shared by the hypothesis tests and the A/B analyses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from statsmodels.stats.multitest import multipletests

Correction = Literal["holm", "fdr_bh"]
CORRECTIONS: tuple[str, ...] = ("holm", "fdr_bh")


def adjust_p_values(p_values: Sequence[float], method: Correction = "holm") -> np.ndarray:
    """Family-wise (Holm, 1979) or false-discovery-rate (Benjamini-Hochberg, 1995) adjusted p-values.

    NaN p-values (tests that could not be run) stay NaN and are left out of the family.
    """
    p = np.asarray(p_values, dtype=float)
    if method not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {method!r}")
    adjusted = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        adjusted[tested] = multipletests(p[tested], method=method)[1]
    return adjusted
