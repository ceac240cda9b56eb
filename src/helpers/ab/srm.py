"""Sample-ratio mismatch: do the users per variant match the planned split?"""

from __future__ import annotations

from typing import Any

import pandas as pd
from scipy import stats


SRM_ALPHA = 0.001  # p-value below which a sample-ratio mismatch is flagged


def sample_ratio_mismatch(users: pd.Series, shares: pd.Series | None = None) -> dict[str, Any]:
    """Chi-square goodness of fit of the users per variant against the planned shares
    (equal by default). ``mismatch`` is True when p < 0.001."""
    users = users.astype(float)
    shares = pd.Series(1.0, index=users.index) if shares is None else shares.reindex(users.index).astype(float)
    expected = users.sum() * shares / shares.sum()
    if len(users) < 2 or users.sum() == 0:
        return {"chi2": float("nan"), "p_value": float("nan"), "mismatch": False,
                "message": "sample ratio not tested: fewer than two variants with users"}
    chi2, p = stats.chisquare(users.to_numpy(), expected.to_numpy())
    mismatch = bool(p < SRM_ALPHA)
    observed = ", ".join(f"{v} {int(n):,}" for v, n in users.items())
    message = (f"SAMPLE RATIO MISMATCH (chi-square {chi2:.1f}, p = {p:.2g} < {SRM_ALPHA}): users per variant "
               f"({observed}) do not match the planned split. The assignment or the logging is broken; do not "
               f"trust any result of this experiment until that is explained."
               if mismatch else f"No sample ratio mismatch (chi-square {chi2:.2f}, p = {p:.3g}): {observed}.")
    return {"chi2": float(chi2), "p_value": float(p), "mismatch": mismatch, "message": message}
