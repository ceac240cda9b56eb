"""The PyMC models and their agreement with the closed form."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers.ab import bayesian as ab
from helpers.ab import mcmc
from helpers.ab.inputs import ABConfig
from tests.ab.builders import FAST, summary


@pytest.mark.slow
def test_pymc_and_arviz_import_without_the_daily_refactor_notice(tmp_path):
    # ArviZ warns on the first import of each day, remembered in the user cache: start from an empty one.
    code = "from helpers.ab import mcmc; mcmc.pymc(); mcmc.arviz()"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "arviz").exists()  # the notice did fire, and was silenced


@pytest.mark.slow
def test_pymc_agrees_with_the_closed_form_and_converges():
    data = summary(("control", 3000, 300), ("b", 3000, 345), ("c", 3000, 290))
    full = ABConfig(draws=20_000, pymc_draws=1000, pymc_chains=4, seed=5)  # the full profile's sampler
    idata = mcmc.pymc_conversion(data, full)
    diagnostics = mcmc.diagnostics(idata, ["p"])
    assert mcmc.converged(diagnostics) and (diagnostics["divergences"] == 0).all()
    check = mcmc.cross_check(data, idata, full)
    assert check["agree"].all(), check
    assert len(check) == 5


@pytest.mark.slow
def test_pymc_revenue_model_matches_its_closed_form():
    data = summary(("control", 2000, 200), ("b", 2000, 240))
    idata = mcmc.pymc_revenue(data, FAST)
    closed = ab.revenue_analysis(data, FAST).set_index("variant")["posterior median"]
    nuts = idata.posterior["revenue_per_user"].median(("chain", "draw")).to_series()
    assert nuts.to_numpy() == pytest.approx(closed.loc[nuts.index].to_numpy(), rel=0.03)
    assert (mcmc.diagnostics(idata, ["revenue_per_user"])["r_hat"] < 1.02).all()
