"""Seeded simulation of A/B experiments from their definitions (``ab_experiments``).

The generator draws daily arrivals, assigns each user to a variant with the split the
assignment delivers (``delivered``: the planned ``allocation`` unless a broken assignment is
simulated), converts with the variant's rate and draws the order value of a converted user
from a log-normal with the variant's mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.core.experiment_specs import ExperimentSpec


def generate(spec: ExperimentSpec, seed: int, scale: float = 1.0) -> pd.DataFrame:
    """Simulated users of one experiment; the same seed gives the same rows."""
    rng = np.random.default_rng([seed, sum(spec.experiment_id.encode())])
    arrivals = rng.poisson(spec.users_per_day * scale, spec.days)
    n = int(arrivals.sum())
    day = np.repeat(np.arange(spec.days), arrivals)
    seconds = rng.uniform(0, 86_400, n)
    assigned_at = spec.start + pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds.round(), unit="s")
    shares = np.array([spec.delivered[v.name] for v in spec.variants])
    which = rng.choice(len(spec.variants), size=n, p=shares / shares.sum())
    rates = np.array([v.rate for v in spec.variants])[which]
    converted = rng.random(n) < rates
    means = np.array([v.order_value for v in spec.variants])[which]
    sigma = spec.order_sigma
    mu = np.log(np.where(means > 0, means, 1.0)) - sigma ** 2 / 2
    revenue = np.where(converted & (means > 0), np.round(rng.lognormal(mu, sigma), 2), 0.0)
    order = np.argsort(assigned_at.to_numpy(), kind="stable")
    return pd.DataFrame({
        "experiment_id": spec.experiment_id,
        "user_id": [f"{spec.experiment_id}-{i:07d}" for i in range(n)],
        "variant": np.array([v.name for v in spec.variants])[which][order],
        "assigned_at": assigned_at.to_numpy()[order],
        "converted": converted.astype(int)[order],
        "revenue": revenue[order],
    })
