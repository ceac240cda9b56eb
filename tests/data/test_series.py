"""The stated gap-fill rule of the analysis view."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.data.ingest import ingest_file
from helpers.data.quality import SeriesSpec
from helpers.data.series import (
    SeriesNotFoundError, completeness, fill_short_gaps, load_series, steps_per_period, window_features,
)
from tests.support import half_hourly


def test_only_short_interior_gaps_are_filled():
    index = pd.date_range("2020-01-01", periods=12, freq="1h")
    values = pd.Series([np.nan, 1, 2, np.nan, 4, np.nan, np.nan, np.nan, 8, 9, 10, np.nan], index=index)
    filled, mask = fill_short_gaps(values, max_steps=2)
    assert filled.iloc[3] == pytest.approx(3.0)  # one missing step: interpolated
    assert filled.iloc[5:8].isna().all()  # three missing steps: longer than 2, left missing
    assert np.isnan(filled.iloc[0]) and np.isnan(filled.iloc[-1])  # edges are never extrapolated
    assert mask.tolist() == [False, False, False, True] + [False] * 8


def test_zero_max_steps_fills_nothing():
    values = pd.Series([1.0, np.nan, 3.0], index=pd.date_range("2020-01-01", periods=3, freq="1D"))
    filled, mask = fill_short_gaps(values, 0)
    assert np.isnan(filled.iloc[1]) and not mask.any()


@pytest.fixture
def gappy(warehouse, tmp_path):
    """Two days of half-hourly data with a 2-step and a 6-step gap."""
    data = half_hourly(96)
    data = data.drop(index=[10, 11] + list(range(60, 66)))
    path = tmp_path / "gappy.csv"
    data.to_csv(path, index=False)
    spec = SeriesSpec("gappy", "timestamp", "demand", "temperature", "workday", freq="30min")
    ingest_file(path, spec, warehouse)
    return warehouse


def test_load_series_regrids_and_fills_short_gaps(gappy):
    view = load_series(gappy, "gappy", max_fill_steps=4)
    assert list(view.columns) == ["unique_id", "ds", "y", "temperature", "workday", "filled"]
    assert len(view) == 96 and view["ds"].diff().dropna().eq(pd.Timedelta("30min")).all()
    assert view["filled"].sum() == 2
    assert view["y"].isna().sum() == 6
    assert view["workday"].notna().all()  # copied from the same day
    # 96 steps: 8 dropped, the 2-step gap filled, the 6-step gap left missing
    assert completeness(view) == {"steps on the grid": 96, "observed": 88, "interpolated (short gaps)": 2,
                                  "missing (long gaps)": 6}


@pytest.mark.parametrize("freq, period, steps", [("30min", "1D", 48), ("1h", "1D", 24), ("15min", "1h", 4),
                                                 ("1D", "1D", 1), ("1h", "7D", 168)])
def test_steps_per_period(freq, period, steps):
    assert steps_per_period(freq, period) == steps


def test_steps_per_period_refuses_calendar_frequencies():
    with pytest.raises(ValueError):
        steps_per_period("MS")


def test_daily_totals_scale_incomplete_days(gappy):
    daily = load_series(gappy, "gappy", grain="daily")
    raw = load_series(gappy, "gappy", max_fill_steps=0).set_index("ds")["y"]
    day_two = raw["2014-01-02"]
    assert daily["y"].iloc[1] == pytest.approx(day_two.mean() * 48)
    hourly = load_series(gappy, "gappy", grain="hourly")
    assert len(hourly) == 48


def test_load_series_errors(gappy):
    with pytest.raises(SeriesNotFoundError, match="ingest it first"):
        load_series(gappy, "nope")
    with pytest.raises(ValueError, match="grain must be one of"):
        load_series(gappy, "gappy", grain="weekly")
    with pytest.raises(ValueError, match="measure must be"):
        load_series(gappy, "gappy", grain="daily", measure="y_max")
    with pytest.raises(ValueError, match="grain must be"):
        window_features(gappy, "gappy", grain="raw")


def test_monthly_series_has_no_aggregates(warehouse, tmp_path):
    frame = pd.DataFrame({"month": pd.date_range("2020-01-01", periods=6, freq="MS").astype(str),
                          "sales": ["1", "2", "3", "4", "5", "6"]})
    path = tmp_path / "monthly.csv"
    frame.to_csv(path, index=False)
    ingest_file(path, SeriesSpec("monthly", "month", "sales", freq="MS"), warehouse)
    assert len(load_series(warehouse, "monthly")) == 6
    with pytest.raises(SeriesNotFoundError, match="coarser"):
        load_series(warehouse, "monthly", grain="daily")
