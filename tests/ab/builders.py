"""Small A/B inputs shared by the tests of helpers.ab."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.ab import validation
from helpers.ab import report as abreport
from helpers.ab.inputs import ABConfig


CONFIG = ABConfig()
FAST = ABConfig(draws=20_000, pymc_draws=400, pymc_chains=2, seed=5)


def summary(*rows) -> pd.DataFrame:
    """(variant, users, conversions[, revenue stats]) rows, control first."""
    frame = pd.DataFrame(rows, columns=["variant", "users", "conversions"])
    rng = np.random.default_rng(0)
    stats = []
    for n, c in zip(frame["users"], frame["conversions"]):
        logs = rng.normal(3.5, 0.8, int(c))
        stats.append({"payers": int(c), "log_revenue": logs.sum(), "log_revenue_sq": (logs ** 2).sum(),
                      "revenue": np.exp(logs).sum(), "revenue_sq": (np.exp(logs) ** 2).sum()})
    return pd.concat([frame, pd.DataFrame(stats)], axis=1)


def experiment_data(rows, days=4, plan=None):
    frame = summary(*rows)
    cumulative = pd.concat([
        pd.DataFrame({"variant": r[0], "day": pd.date_range("2026-01-05", periods=days),
                      "users": np.linspace(r[1] / days, r[1], days).round().astype(int),
                      "conversions": np.linspace(r[2] / days, r[2], days).round().astype(int), "revenue": 0.0})
        for r in rows], ignore_index=True)
    users = pd.DataFrame({"variant": np.repeat(frame["variant"], frame["users"]), "revenue": 0.0})
    info = {"experiment_id": "x", "control": rows[0][0], "description": "", "source": "test",
            "updated_at": "2026-01-01", "plan": plan}
    return abreport.ExperimentData(info, frame, cumulative, users)


def frame(rows):
    out = pd.DataFrame(rows, columns=["variant", "users", "conversions", "revenue", "revenue_sq"])
    return out.assign(payers=out["conversions"], log_revenue=0.0, log_revenue_sq=0.0)


SPEC = {"demo": {"days": 5, "users_per_day": 400, "start": "2026-01-05",
                 "variants": {"control": {"rate": 0.2, "order_value": 30}, "treat": {"rate": 0.3, "order_value": 30}}}}


def file_rows() -> pd.DataFrame:
    rows = [
        ["e1", "u1", "control", "2026-01-05T10:00:00", "1", "12.5"],
        ["e1", "u2", "treat", "2026-01-05T11:00:00", "0", "0"],
        ["e1", "u3", "treat", "not a time", "0", "0"],             # unparseable
        ["e1", "u4", "treat", "2026-01-05T12:00:00", "yes", "0"],   # unknown category
        ["e1", "u5", "control", "2026-01-05T12:00:00", "0", "9"],   # revenue without conversion
        ["e1", "u6", "control", "2026-01-05T12:00:00", "1", "-3"],  # negative revenue
        ["e1", "", "control", "2026-01-05T12:00:00", "1", "3"],     # missing user
        ["e1", "u7", "control", "2026-01-05T13:00:00", "0", "0"],
        ["e1", "u7", "control", "2026-01-05T13:00:00", "0", "0"],   # exact copy: first kept
        ["e1", "u8", "control", "2026-01-05T14:00:00", "0", "0"],
        ["e1", "u8", "treat", "2026-01-05T14:00:00", "0", "0"],     # two variants: both quarantined
        ["e 1", "u9", "treat", "2026-01-05T14:00:00", "0", "0"],    # bad id characters
    ]
    return pd.DataFrame(rows, columns=list(validation.COLUMNS))
