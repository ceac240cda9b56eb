"""The Bayesian A/B models fitted by NUTS (PyMC), as a cross-check of the closed form
(:mod:`helpers.ab.bayesian`) and for the revenue model; ArviZ diagnostics.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from helpers.ab.bayesian import beta_parameters, prob_beats
from helpers.ab.inputs import ABConfig, check_analysable


def arviz():
    """ArviZ, imported without its once-a-day notice about the coming 1.0 refactor.

    The notice is a FutureWarning raised on the first import of each day; it says nothing
    about this analysis and would otherwise appear in whichever report imports ArviZ first.
    PyMC imports ArviZ too, so PyMC is imported through here as well.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
        import arviz as az
    return az


def pymc():
    """PyMC, imported after :func:`arviz` so the ArviZ notice stays quiet."""
    arviz()
    import pymc as pm

    return pm


def _sample(model, config: ABConfig, seed_offset: int = 0):
    import logging

    pm = pymc()

    logging.getLogger("pymc").setLevel(logging.WARNING)  # no sampler chatter in the reports
    with model:
        return pm.sample(draws=config.pymc_draws, tune=config.pymc_draws, chains=config.pymc_chains, cores=1,
                         random_seed=config.seed + seed_offset, progressbar=False, compute_convergence_checks=False)


def pymc_conversion(summary: pd.DataFrame, config: ABConfig):
    """The Beta-Binomial model sampled by NUTS; returns the ArviZ InferenceData (variable ``p``)."""
    pm = pymc()

    summary = check_analysable(summary)
    variants = summary["variant"].tolist()
    with pm.Model(coords={"variant": variants}) as model:
        p = pm.Beta("p", alpha=1.0, beta=1.0, dims="variant")
        pm.Binomial("conversions", n=summary["users"].to_numpy(), p=p, observed=summary["conversions"].to_numpy(),
                    dims="variant")
    return _sample(model, config)


def pymc_revenue(summary: pd.DataFrame, config: ABConfig):
    """Revenue per user = P(pay) x exp(mu + sigma^2 / 2), fitted from the summary statistics.

    The log-normal likelihood of the payers' order values enters through its sufficient
    statistics (count, sum and sum of squares of the log values), which SQL computes.
    """
    pm = pymc()

    summary = check_analysable(summary)
    variants = summary["variant"].tolist()
    n = summary["payers"].to_numpy(dtype=float)
    s1, s2 = summary["log_revenue"].to_numpy(dtype=float), summary["log_revenue_sq"].to_numpy(dtype=float)
    with pm.Model(coords={"variant": variants}) as model:
        pay = pm.Beta("pay", alpha=1.0, beta=1.0, dims="variant")
        pm.Binomial("payers", n=summary["users"].to_numpy(), p=pay, observed=n.astype(int), dims="variant")
        mu = pm.Normal("mu", mu=0.0, sigma=10.0, dims="variant")
        sigma = pm.HalfNormal("sigma", sigma=5.0, dims="variant")
        pm.Potential("log_order_values", (-n * pm.math.log(sigma)
                                          - (s2 - 2 * mu * s1 + n * mu ** 2) / (2 * sigma ** 2)).sum())
        pm.Deterministic("revenue_per_user", pay * pm.math.exp(mu + sigma ** 2 / 2), dims="variant")
    return _sample(model, config, seed_offset=1)


def diagnostics(idata, var_names: list[str]) -> pd.DataFrame:
    """R-hat, bulk/tail ESS and Monte Carlo error per variable, plus the number of divergences."""
    az = arviz()

    table = az.summary(idata, var_names=var_names, kind="all", round_to=None)
    table["divergences"] = int(idata.sample_stats["diverging"].sum())
    return table[["mean", "sd", "mcse_mean", "ess_bulk", "ess_tail", "r_hat", "divergences"]]


def converged(table: pd.DataFrame) -> bool:
    """R-hat below 1.01, bulk ESS above 400 and no divergences (Vehtari et al., 2021)."""
    return bool((table["r_hat"] < 1.01).all() and (table["ess_bulk"] > 400).all() and (table["divergences"] == 0).all())


def cross_check(summary: pd.DataFrame, idata, config: ABConfig, z: float = 4.0) -> pd.DataFrame:
    """Closed form against PyMC: posterior means and P(beat control), with the Monte Carlo error.

    They agree when the difference is within ``z`` Monte Carlo standard errors of the NUTS
    estimate (ESS-based) plus that of the closed-form draws.
    """
    az = arviz()

    summary = check_analysable(summary)
    p = idata.posterior["p"]
    ess = az.ess(idata, var_names=["p"])["p"]
    params = beta_parameters(summary).set_index("variant")
    control = summary["variant"].iloc[0]
    rows = []
    for variant in summary["variant"]:
        a, b = params.loc[variant, ["a", "b"]]
        exact_mean, exact_sd = a / (a + b), np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        nuts = p.sel(variant=variant).to_numpy().ravel()
        se = exact_sd / np.sqrt(float(ess.sel(variant=variant)))
        rows.append({"quantity": f"mean rate {variant}", "closed form": exact_mean, "PyMC": float(nuts.mean()),
                     "tolerance": z * se})
        if variant != control:
            exact = prob_beats(*params.loc[control, ["a", "b"]], a, b)
            chance = float((nuts > p.sel(variant=control).to_numpy().ravel()).mean())
            n_eff = float(min(ess.sel(variant=variant), ess.sel(variant=control)))
            rows.append({"quantity": f"P({variant} beats {control})", "closed form": exact, "PyMC": chance,
                         "tolerance": z * np.sqrt(max(exact * (1 - exact), 1e-4) / n_eff)})
    table = pd.DataFrame(rows)
    table["difference"] = table["PyMC"] - table["closed form"]
    table["agree"] = table["difference"].abs() <= table["tolerance"]
    return table
