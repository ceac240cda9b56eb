from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.analysis import eda


@pytest.fixture
def view():
    ds = pd.date_range("2020-01-01", periods=24 * 7 * 6, freq="1h")
    hours = np.arange(len(ds))
    rng = np.random.default_rng(3)
    y = 10 + 3 * np.sin(2 * np.pi * hours / 24) + 2 * np.sin(2 * np.pi * hours / 168) + rng.normal(0, 0.3, len(ds))
    frame = pd.DataFrame({"unique_id": "s", "ds": ds, "y": y, "temperature": 15 + rng.normal(0, 3, len(ds)),
                          "workday": (ds.dayofweek < 5).astype(float), "filled": False})
    frame.loc[5, "filled"] = True
    frame.loc[100:102, "y"] = np.nan
    return frame


def test_describe_and_missing(view):
    table = eda.describe_dataset(view, "1h", "file.csv").set_index("item")["value"]
    assert table["steps on the grid"] == len(view) and table["missing (long gaps)"] == 3
    assert table["interpolated (short gaps)"] == 1 and table["observed"] == len(view) - 4
    months = eda.missing_by_month(view)
    assert months["steps"].sum() == len(view) and months["missing"].sum() == 3


def test_mstl_recovers_both_cycles(view):
    components = eda.mstl_decomposition(view.set_index("ds")["y"], (24, 168))
    assert {"seasonal_24", "seasonal_168", "trend", "remainder"} <= set(components.columns)
    assert eda.seasonal_strength(components, "seasonal_24") > 0.9
    assert components["seasonal_24"].std() > components["seasonal_168"].std()  # amplitude 3 vs 2


def test_stl_strength_is_low_for_noise():
    rng = np.random.default_rng(0)
    y = pd.Series(rng.normal(size=200), index=pd.date_range("2020-01-01", periods=200, freq="1D"))
    assert eda.seasonal_strength(eda.stl_decomposition(y, 7), "seasonal") < 0.5


def test_features_and_figures(view):
    daily = view.set_index("ds").resample("1D").mean(numeric_only=True)
    features = eda.correlation_features(daily)
    assert {"y_lag_1", "y_lag_7", "heating_degree_days", "cooling_degree_days", "workday"} <= set(features.columns)
    assert (features["heating_degree_days"] >= 0).all()
    assert features["y_lag_7"].iloc[7] == daily["y"].iloc[0]
    figures = [
        eda.plot_correlation_heatmap(features), eda.plot_acf_pacf(view["y"], 48, "t"),
        eda.plot_demand_vs_temperature(daily), eda.plot_series_with_rolling(view, {"day": 24}, "t"),
        eda.plot_decomposition(eda.stl_decomposition(daily["y"], 7), "t"),
    ]
    assert all(len(fig.data) > 0 for fig in figures)
    assert len(eda.summary_statistics(view)) == 2


def test_covariates_absent(view):
    daily = view.set_index("ds").resample("1D").mean(numeric_only=True)
    daily["temperature"] = np.nan
    daily["workday"] = np.nan
    assert list(eda.correlation_features(daily).columns) == ["y", "y_lag_1", "y_lag_7"]
    assert list(eda.summary_statistics(view.assign(temperature=np.nan)).index) == ["y"]
