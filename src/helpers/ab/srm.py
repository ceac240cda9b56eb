"""Sample-ratio mismatch: do the users per variant match the planned split?"""

from __future__ import annotations

from typing import Any

import pandas as pd
from scipy import stats


SRM_ALPHA = 0.001  # p-value below which a sample-ratio mismatch is flagged


def sample_ratio_mismatch(users: pd.Series, shares: pd.Series | None = None, planned: bool = True
                          ) -> dict[str, Any]:
    """Chi-square goodness of fit of the users per variant against the planned ``shares``.

    ``shares`` maps each variant to its planned share (equal shares when ``None``); ``planned``
    says whether they come from the experiment's plan or are the equal-split default, which
    the message then states. ``mismatch`` is True when p < :data:`SRM_ALPHA`.
    """
    users = users.astype(float)
    if shares is None:
        shares, planned = pd.Series(1.0, index=users.index), False
    shares = shares.reindex(users.index).fillna(0.0).astype(float)
    if len(users) < 2 or users.sum() == 0:
        return {"chi2": float("nan"), "p_value": float("nan"), "mismatch": False, "planned": planned,
                "message": "sample ratio not tested: fewer than two variants with users"}
    expected = users.sum() * shares / shares.sum()
    split = "/".join(f"{s:.0%}" if s * 100 == round(s * 100) else f"{s:.1%}" for s in shares / shares.sum())
    against = f"the planned split {split}" if planned else (
        f"an equal split ({split}; no planned allocation is stored for this experiment: load it with a plan, "
        "`python -m helpers.ab load FILE --plan PLAN.yaml`, to test against its own)")
    observed = ", ".join(f"{v} {int(n):,}" for v, n in users.items())
    if (expected[users > 0] == 0).any():
        zero = [v for v in users.index if users[v] > 0 and expected[v] == 0]
        return {"chi2": float("inf"), "p_value": 0.0, "mismatch": True, "planned": planned,
                "message": f"SAMPLE RATIO MISMATCH: {', '.join(zero)} received users but {against} gives them none "
                           f"({observed}). Do not trust any result until that is explained."}
    chi2, p = stats.chisquare(users.to_numpy(), expected.to_numpy())
    mismatch = bool(p < SRM_ALPHA)
    message = (f"SAMPLE RATIO MISMATCH (chi-square {chi2:.1f}, p = {p:.2g} < {SRM_ALPHA}): users per variant "
               f"({observed}) do not match {against}. The assignment or the logging is broken; do not "
               f"trust any result of this experiment until that is explained."
               if mismatch else f"No sample ratio mismatch against {against} (chi-square {chi2:.2f}, p = {p:.3g}): "
                                f"{observed}.")
    return {"chi2": float(chi2), "p_value": float(p), "mismatch": mismatch, "planned": planned, "message": message}
