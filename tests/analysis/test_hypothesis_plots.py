"""Each hypothesis figure draws the quantities its test judges, on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.analysis import hypotheses as hy
from helpers.analysis import hypothesis_plots as hp
from tests.analysis.builders import daily, hypothesis

N = 120


def test_every_test_has_a_figure():
    assert hp.PLOTS.keys() == hy.TESTS.keys()


def test_weekly_deviations_one_box_per_weekday_in_order():
    pattern = np.array([3.0, 2, 1, 0, -1, -2, -3])  # Monday .. Sunday
    frame = daily(0.5 * np.arange(70) + np.tile(pattern, 10), start="2020-01-06")
    fig = hp.plot_hypothesis(frame, hypothesis("weekly_seasonality", period=7))
    assert [box.name for box in fig.data] == list(hp.WEEKDAYS)
    # the centred mean removes the trend: each weekday's box holds only its pattern value
    assert [sorted(set(np.round(box.y, 9))) for box in fig.data] == [[v] for v in pattern]


def test_rolling_level_of_a_line():
    frame = daily(2.0 * np.arange(40))
    fig = hp.plot_rolling_level(frame, hypothesis("stationarity"), window=5)
    observed, mean, sd = fig.data
    assert [t.name for t in fig.data] == ["y", "5-day mean", "5-day sd"]
    # a centred 5-day window on a line: the mean is the middle value, the sd of 2 * (-2..2) is sqrt(10)
    np.testing.assert_allclose(mean.y[2:-2], observed.y[2:-2])
    np.testing.assert_allclose(sd.y[2:-2], np.sqrt(10))
    assert np.isnan(mean.y[:2]).all() and np.isnan(sd.y[-2:]).all()


def test_granger_figure_draws_the_pair_the_test_used():
    rng = np.random.default_rng(7)
    frame = daily(np.cumsum(rng.normal(size=N)), np.cumsum(rng.normal(size=N)))
    fig = hp.plot_hypothesis(frame, hypothesis("granger", ("degree_days", "y")))
    changes = frame[["y", "degree_days"]].diff().dropna()
    (points,) = fig.data
    np.testing.assert_allclose(points.x, changes["degree_days"])
    np.testing.assert_allclose(points.y, changes["y"])
    assert fig.layout.xaxis.title.text == "degree_days (differenced 1x)"
    assert fig.layout.yaxis.title.text == "y (differenced 1x)"


def test_granger_figure_in_levels_when_the_test_kept_levels():
    rng = np.random.default_rng(8)
    frame = daily(rng.normal(size=N), rng.normal(size=N))
    (points,) = hp.plot_hypothesis(frame, hypothesis("granger", ("degree_days", "y"))).data
    np.testing.assert_allclose(points.x, frame["degree_days"])
    np.testing.assert_allclose(points.y, frame["y"])


def test_group_boxes_hold_each_group():
    flag = (np.arange(70) % 7 < 5).astype(float)
    frame = daily(np.where(flag == 1, 10.0, 4.0) + np.arange(70) / 100, workday=flag)
    ones, zeros = hp.plot_hypothesis(frame, hypothesis("group_difference", ("y", "workday"))).data
    assert (ones.name, zeros.name) == ("workday = 1", "workday = 0")
    np.testing.assert_allclose(ones.y, frame.loc[flag == 1, "y"])
    np.testing.assert_allclose(zeros.y, frame.loc[flag == 0, "y"])


@pytest.mark.parametrize("alpha, bound", [(0.05, 1.3581), (0.01, 1.6276)])  # Kolmogorov's table
def test_cusum_figure_draws_the_test_s_path_and_bounds(alpha, bound):
    y = np.r_[np.ones(28), -np.ones(28)]
    fig = hp.plot_hypothesis(daily(y), hypothesis("structural_break", alpha=alpha))
    (path,) = fig.data
    np.testing.assert_allclose(path.y, np.cumsum(y) / 8, atol=1e-12)  # see test_hypotheses
    assert sorted(shape.y0 for shape in fig.layout.shapes) == pytest.approx([-bound, bound], abs=1e-4)


def test_standardised_pair_of_a_linear_pair_coincides():
    x = np.sin(np.arange(N) / 5)
    fig = hp.plot_hypothesis(daily(3 * x + 5, x), hypothesis("cointegration", ("y", "degree_days")))
    y_line, x_line = fig.data
    assert (y_line.name, x_line.name) == ("y", "degree_days")
    np.testing.assert_allclose(y_line.y, x_line.y, atol=1e-12)
    assert np.mean(y_line.y) == pytest.approx(0, abs=1e-12) and np.std(y_line.y, ddof=1) == pytest.approx(1)


def test_lowess_of_a_line_is_the_line():
    x = np.linspace(0, 10, 50)
    fig = hp.plot_hypothesis(daily(2 * x + 1, x), hypothesis("correlation", ("y", "degree_days")))
    points, trend = fig.data
    np.testing.assert_allclose(points.x, x)
    np.testing.assert_allclose(points.y, 2 * x + 1)
    np.testing.assert_allclose(trend.y, 2 * np.asarray(trend.x) + 1, atol=1e-9)


def test_a_hypothesis_the_data_cannot_support_says_why():
    fig = hp.plot_hypothesis(daily(np.arange(N)), hypothesis("granger", ("degree_days", "y")))
    assert fig.data == ()
    (note,) = fig.layout.annotations
    assert note.text == "Not tested: the series has no 'degree_days' data, which H_granger needs."
