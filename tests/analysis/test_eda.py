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
    # 1,008 hours from 1 January: 744 in January (one filled step, three missing), 264 in February
    assert eda.missing_by_month(view).to_dict("records") == [
        {"month": "2020-01", "steps": 744, "interpolated": 1, "missing": 3},
        {"month": "2020-02", "steps": 264, "interpolated": 0, "missing": 0}]


def test_mstl_recovers_both_cycles(view):
    components = eda.mstl_decomposition(view.set_index("ds")["y"], (24, 168))
    assert {"seasonal_24", "seasonal_168", "trend", "remainder"} <= set(components.columns)
    assert eda.seasonal_strength(components, "seasonal_24") > 0.9
    assert components["seasonal_24"].std() > components["seasonal_168"].std()  # amplitude 3 vs 2


def test_stl_strength_is_low_for_noise():
    rng = np.random.default_rng(0)
    y = pd.Series(rng.normal(size=200), index=pd.date_range("2020-01-01", periods=200, freq="1D"))
    assert eda.seasonal_strength(eda.stl_decomposition(y, 7), "seasonal") < 0.5


def test_correlation_features(view):
    daily = view.set_index("ds").resample("1D").mean(numeric_only=True)
    features = eda.correlation_features(daily)
    assert list(features.columns) == ["y", "y_lag_1", "y_lag_7", "temperature", "heating_degree_days",
                                      "cooling_degree_days", "workday"]
    assert features["y_lag_7"].iloc[7] == daily["y"].iloc[0] and np.isnan(features["y_lag_7"].iloc[6])
    # base 18 C: 12 C is 6 heating and 0 cooling degree-days, 21 C is 0 and 3
    two_days = eda.correlation_features(pd.DataFrame({"y": [1.0, 2.0], "temperature": [12.0, 21.0],
                                                      "workday": [1.0, 0.0]}), lags=())
    assert two_days[["heating_degree_days", "cooling_degree_days"]].to_numpy().tolist() == [[6, 0], [0, 3]]


def test_summary_statistics_known_answer():
    view = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 10.0], "temperature": [10.0, 10.0, 20.0, 20.0, np.nan]})
    table = eda.summary_statistics(view)
    assert list(table.index) == ["y", "temperature"]
    assert table.loc["y", ["count", "mean", "50%", "min", "max"]].tolist() == [5, 4.0, 3.0, 1.0, 10.0]
    assert table.loc["y", "std"] == pytest.approx(np.sqrt(12.5), abs=1e-3)  # deviations -3,-2,-1,0,6
    assert table.loc["y", "skew"] > 1  # one long right tail
    assert table.loc["temperature", ["count", "mean", "skew"]].tolist() == [4, 15.0, 0.0]


def test_heatmap_draws_the_rank_correlations():
    a = np.arange(1.0, 21.0)
    features = pd.DataFrame({"a": a, "square": a ** 2, "reversed": -a})
    (heatmap,) = eda.plot_correlation_heatmap(features).data
    # monotone transforms have Spearman correlation +-1
    assert np.asarray(heatmap.z).tolist() == [[1, 1, -1], [1, 1, -1], [-1, -1, 1]]
    assert list(heatmap.x) == list(heatmap.y) == ["a", "square", "reversed"]
    (pearson,) = eda.plot_correlation_heatmap(features, method="pearson").data
    assert 0.9 < np.asarray(pearson.z)[0, 1] < 1  # a and a^2 are not linearly related


def test_acf_pacf_of_an_alternating_series():
    """For +1, -1, ... of even length n the ACF at lag k is (-1)^k (n - k) / n."""
    n, lags = 100, 5
    fig = eda.plot_acf_pacf(pd.Series(np.tile([1.0, -1.0], n // 2)), lags=lags, title="t")
    acf_bars, pacf_bars = fig.data
    assert list(acf_bars.x) == [1, 2, 3, 4, 5]
    k = np.arange(1, lags + 1)
    np.testing.assert_allclose(acf_bars.y, (-1.0) ** k * (n - k) / n)
    assert pacf_bars.y[0] == pytest.approx(-(n - 1) / n)  # the first partial autocorrelation is the ACF's
    assert sorted({round(shape.y0, 6) for shape in fig.layout.shapes}) == [-0.196, 0.196]  # 1.96 / sqrt(100)


def test_demand_vs_temperature_splits_by_the_flag(view):
    daily = view.set_index("ds").resample("1D").mean(numeric_only=True)
    work, other = eda.plot_demand_vs_temperature(daily).data
    assert (work.name, other.name) == ("work day", "non-work day")
    assert len(work.x) == 30 and len(other.x) == 12  # six weeks, 1 January 2020 a Wednesday
    np.testing.assert_allclose(work.y, daily.loc[daily["workday"] == 1, "y"])
    np.testing.assert_allclose(other.x, daily.loc[daily["workday"] == 0, "temperature"])


def test_rolling_mean_of_a_line_is_the_line(view):
    line = view.assign(y=np.arange(len(view), dtype=float))
    observed, rolling = eda.plot_series_with_rolling(line, {"3 steps": 3}, "t").data
    assert rolling.name == "3 steps"
    np.testing.assert_allclose(rolling.y[1:-1], observed.y[1:-1])
    assert rolling.y[0] == 0.5  # the window's first half (min_periods = 1): mean of 0 and 1


def test_stl_parts_add_up_and_the_figure_draws_each(view):
    daily = view.set_index("ds").resample("1D").mean(numeric_only=True)
    components = eda.stl_decomposition(daily["y"], 7)
    np.testing.assert_allclose(components["trend"] + components["seasonal"] + components["remainder"],
                               components["observed"])
    fig = eda.plot_decomposition(components, "t")
    assert [a.text for a in fig.layout.annotations] == ["observed", "trend", "seasonal", "remainder"]
    for trace, column in zip(fig.data, components.columns, strict=True):
        np.testing.assert_allclose(trace.y, components[column])


def test_covariates_absent(view):
    daily = view.set_index("ds").resample("1D").mean(numeric_only=True)
    daily["temperature"] = np.nan
    daily["workday"] = np.nan
    assert list(eda.correlation_features(daily).columns) == ["y", "y_lag_1", "y_lag_7"]
    assert list(eda.summary_statistics(view.assign(temperature=np.nan)).index) == ["y"]


@pytest.mark.parametrize("call, message", [
    (lambda y: eda.stl_decomposition(y, period=7),
     "STL with period 7 needs at least 14 values (two full cycles), the series has {n}; load a longer series"),
    (lambda y: eda.mstl_decomposition(y, periods=(24, 168)),
     "MSTL with periods 24, 168 needs at least 337 values (more than two cycles of 168), the series has {n}; "
     "load a longer series"),
    (lambda y: eda.plot_acf_pacf(y, lags=28, title="t"),
     "ACF/PACF over 28 lags needs at least 58 values (twice the lags plus two, observed), the series has {n}; "
     "load a longer series"),
])
@pytest.mark.parametrize("n", [1, 3, 13])
def test_a_series_too_short_for_an_analysis_is_refused_naming_its_minimum(call, message, n):
    """statsmodels decomposed a 3-value series with STL without a word, and MSTL failed with
    UnboundLocalError: the pipeline's EDA on a 3-row file ended in that traceback."""
    y = pd.Series(np.arange(n, dtype=float), index=pd.date_range("2020-01-01", periods=n, freq="1D"))
    with pytest.raises(ValueError) as info:
        call(y)
    assert str(info.value) == message.format(n=n)


def test_mstl_refuses_a_series_that_holds_the_daily_cycle_but_not_the_weekly_one(view):
    """Below 337 hours statsmodels dropped the 168-hour period and the notebook's seasonal_168 was missing."""
    with pytest.raises(ValueError, match="needs at least 337 values"):
        eda.mstl_decomposition(view.set_index("ds")["y"].iloc[:336], (24, 168))
    assert "seasonal_168" in eda.mstl_decomposition(view.set_index("ds")["y"].iloc[:337], (24, 168))
