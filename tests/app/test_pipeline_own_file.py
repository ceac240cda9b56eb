"""The whole pipeline on a user's own file: an hourly series with no temperature or work-day flag.

A file of its own so that pytest-xdist can run it beside tests/app/test_pipeline.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.app.pipeline import build
from helpers.core.settings import load_settings


#: One small A/A experiment, lighter sampling: the A/B part of the build is not what the next test is about.
ONE_SMALL_EXPERIMENT = {
    "HELPERS_AB_EXPERIMENTS": '{"small_aa": {"start": "2026-09-14", "days": 7, "users_per_day": 400, '
                              '"control": "control", "variants": {"control": {"rate": 0.1, "order_value": 30}, '
                              '"copy": {"rate": 0.1, "order_value": 30}}}}',
    "HELPERS_AB_PYMC_DRAWS": "100", "HELPERS_AB_PYMC_CHAINS": "1", "HELPERS_AB_DRAWS": "2000",
}


@pytest.mark.slow
def test_pipeline_runs_on_another_series_without_covariates(tmp_path, monkeypatch):
    """An hourly series with no temperature or work-day flag: covariate hypotheses are 'not tested'."""
    for key, value in ONE_SMALL_EXPERIMENT.items():
        monkeypatch.setenv(key, value)
    ds = pd.date_range("2021-03-01", periods=24 * 70, freq="1h")
    hours = np.arange(len(ds))
    rng = np.random.default_rng(7)
    load = 50 + 10 * np.sin(2 * np.pi * hours / 24) + 5 * (ds.dayofweek < 5) + rng.normal(0, 2, len(ds))
    source = tmp_path / "site_load.parquet"
    pd.DataFrame({"time": ds, "load_mw": load}).to_parquet(source)
    settings = load_settings("test", series_id="site_load", source_file=str(source), timestamp_col="time",
                             target_col="load_mw", temperature_col="", workday_col="", freq="1h",
                             products=str(tmp_path / "products"), reports=str(tmp_path / "reports"),
                             warehouse_path=str(tmp_path / "warehouse.duckdb"))
    assert build(settings)["ran"].all()
    page = (settings.reports / "hypothesis_tests.html").read_text()
    assert "Not tested: the series has no 'degree_days' data" in page
    assert "Not tested: the series has no 'workday' data" in page
    assert (settings.reports / "bayesian_ab-small_aa.html").exists()
