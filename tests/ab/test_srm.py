"""The sample-ratio-mismatch check against the planned split."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.ab import simulation, srm
from helpers.core import experiment_specs
from helpers.core.settings import load_settings


def test_sample_ratio_mismatch_is_flagged_below_one_in_a_thousand():
    fine = srm.sample_ratio_mismatch(pd.Series({"a": 5000, "b": 5050}))
    assert not fine["mismatch"] and fine["p_value"] > 0.1
    # chi-square by hand: (5200 - 5000)^2 / 5000 * 2 = 16, p = 6.3e-5
    broken = srm.sample_ratio_mismatch(pd.Series({"a": 5200, "b": 4800}))
    assert broken["mismatch"] and broken["message"].startswith("SAMPLE RATIO MISMATCH")
    assert broken["chi2"] == pytest.approx(16.0) and broken["p_value"] == pytest.approx(6.334e-5, rel=1e-3)
    planned = srm.sample_ratio_mismatch(pd.Series({"a": 7000, "b": 3000}), pd.Series({"a": 0.7, "b": 0.3}))
    assert not planned["mismatch"] and planned["chi2"] == pytest.approx(0.0)
    assert not srm.sample_ratio_mismatch(pd.Series({"a": 10}))["mismatch"]
    unplanned = srm.sample_ratio_mismatch(pd.Series({"a": 7000, "b": 3000, "c": 5}), pd.Series({"a": 0.7, "b": 0.3}))
    assert unplanned["mismatch"] and "c received users" in unplanned["message"]


def test_the_configured_broken_banner_is_flagged_and_a_planned_70_30_is_not(clean_env):
    """env.yaml's banner_srm is planned 50/50 and delivers 51.5/48.5: at its configured size
    (10 days x 2,000 users) the check flags it; a planned 70/30 delivered 70/30 passes."""
    specs = {s.experiment_id: s for s in experiment_specs.parse_specs(load_settings().ab_experiments)}
    banner = specs["banner_srm"]
    assert banner.plan.allocation == {"control": 0.5, "new_banner": 0.5}
    assert banner.delivered == {"control": 0.515, "new_banner": 0.485}
    users = banner.days * banner.users_per_day
    delivered = pd.Series({v: users * share for v, share in banner.delivered.items()})
    result = srm.sample_ratio_mismatch(delivered, pd.Series(banner.plan.shares(list(delivered.index))))
    assert result["mismatch"] and result["chi2"] == pytest.approx(18.0)  # 2 x 300^2 / 10,000
    generated = simulation.generate(banner, seed=load_settings().ab_seed).groupby("variant").size()
    assert srm.sample_ratio_mismatch(generated, pd.Series(banner.plan.shares(list(generated.index))))["mismatch"]
    seventy = srm.sample_ratio_mismatch(pd.Series({"control": 7000, "b": 3000}), pd.Series({"control": 0.7, "b": 0.3}))
    assert not seventy["mismatch"]
