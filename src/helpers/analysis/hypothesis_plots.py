"""One figure per pre-registered hypothesis, drawn from the quantities its test judges.

Each ``plot_*`` takes the daily frame (:func:`helpers.analysis.hypotheses.daily_frame`) and the
:class:`~helpers.analysis.hypotheses.Hypothesis`, and returns a plotly figure. The numbers come
from the same functions the tests use (the weekly deviations, the transformed Granger pair, the
CUSUM path), so a figure never shows a different transformation than the test ran. When the
data cannot support a test (:class:`~helpers.analysis.hypotheses.NotTestable`) the figure says
why instead of drawing.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
from scipy import stats
from statsmodels.nonparametric.smoothers_lowess import lowess

from helpers.analysis.hypotheses import (
    Hypothesis, NotTestable, cusum_path, granger_pair, require_columns, weekly_deviations,
)

_LAYOUT = dict(height=380, margin=dict(t=50, b=40, l=60, r=20))
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _figure(title: str, xaxis_title: str, yaxis_title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, xaxis_title=xaxis_title, yaxis_title=yaxis_title, **_LAYOUT)
    return fig


def plot_weekly_deviations(frame: pd.DataFrame, h: Hypothesis) -> go.Figure:
    """Box plot per weekday of ``y`` minus its centred ``period``-day mean (what Kruskal-Wallis compares)."""
    period = int(h.params.get("period", 7))
    deviations = weekly_deviations(require_columns(frame, ("y",), h.id)["y"], period)
    fig = _figure(f"{h.id}: deviation from the centred {period}-day mean by weekday", "weekday",
                  f"deviation from {period}-day mean")
    for day in WEEKDAYS:
        fig.add_box(y=deviations[deviations.index.day_name() == day], name=day, showlegend=False)
    return fig


def plot_rolling_level(frame: pd.DataFrame, h: Hypothesis, window: int = 30) -> go.Figure:
    """``y`` with its centred ``window``-day rolling mean and standard deviation (a drifting mean
    is what ADF and KPSS weigh)."""
    y = require_columns(frame, ("y",), h.id)["y"]
    rolling = y.rolling(window, center=True)
    fig = _figure(f"{h.id}: daily demand with {window}-day rolling mean and sd", "day", "daily total")
    fig.add_scatter(x=y.index, y=y, name="y")
    fig.add_scatter(x=y.index, y=rolling.mean(), name=f"{window}-day mean")
    fig.add_scatter(x=y.index, y=rolling.std(), name=f"{window}-day sd")
    return fig


def plot_granger_pair(frame: pd.DataFrame, h: Hypothesis) -> go.Figure:
    """The effect against the cause, transformed as the Granger test transformed them."""
    pair, label = granger_pair(frame, h)
    cause, effect = h.variables
    fig = _figure(f"{h.id}: {effect} against {cause} ({label}, as tested)", f"{cause} ({label})",
                  f"{effect} ({label})")
    fig.add_scatter(x=pair[cause], y=pair[effect], mode="markers", marker=dict(size=5), showlegend=False)
    return fig


def plot_group_difference(frame: pd.DataFrame, h: Hypothesis) -> go.Figure:
    """Box plots of the value for flag 1 and flag 0 (what Mann-Whitney compares)."""
    value, flag = h.variables
    data = require_columns(frame, (value, flag), h.id)
    fig = _figure(f"{h.id}: {value} by {flag}", flag, value)
    for level in (1, 0):
        fig.add_box(y=data.loc[data[flag] == level, value], name=f"{flag} = {level}", boxpoints="all",
                    showlegend=False)
    return fig


def plot_cusum(frame: pd.DataFrame, h: Hypothesis) -> go.Figure:
    """The scaled CUSUM path of the structural-break test with its bounds at ``h.alpha``.

    The bounds are the ``1 - alpha`` quantile of the supremum of a Brownian bridge
    (Kolmogorov's distribution, 1.36 at 5%); the test rejects when the path crosses them.
    """
    path = cusum_path(require_columns(frame, ("y",), h.id)["y"])
    bound = float(stats.kstwobign.isf(h.alpha))
    fig = _figure(f"{h.id}: CUSUM of the residuals on weekday dummies", "day", "scaled CUSUM")
    fig.add_scatter(x=path.index, y=path, name="CUSUM", showlegend=False)
    for sign in (1, -1):
        fig.add_hline(y=sign * bound, line_dash="dash", line_color="grey")
    return fig


def plot_standardised_pair(frame: pd.DataFrame, h: Hypothesis) -> go.Figure:
    """Both series standardised (mean 0, sd 1): a shared long-run path keeps them together."""
    data = require_columns(frame, h.variables, h.id)
    standardised = (data - data.mean()) / data.std()
    fig = _figure(f"{h.id}: standardised {' and '.join(h.variables)}", "day", "standardised")
    for column in h.variables:
        fig.add_scatter(x=standardised.index, y=standardised[column], name=column)
    return fig


def plot_scatter_with_lowess(frame: pd.DataFrame, h: Hypothesis, frac: float = 2 / 3) -> go.Figure:
    """The first variable against the second with a lowess trend (Cleveland, 1979; ``frac`` of the
    points in each local fit)."""
    first, second = h.variables
    data = require_columns(frame, (first, second), h.id)
    trend = lowess(data[first], data[second], frac=frac)
    fig = _figure(f"{h.id}: {first} against {second}", second, first)
    fig.add_scatter(x=data[second], y=data[first], mode="markers", marker=dict(size=5), name="days")
    fig.add_scatter(x=trend[:, 0], y=trend[:, 1], name="lowess")
    return fig


PLOTS: dict[str, Callable[[pd.DataFrame, Hypothesis], go.Figure]] = {
    "weekly_seasonality": plot_weekly_deviations,
    "stationarity": plot_rolling_level,
    "granger": plot_granger_pair,
    "group_difference": plot_group_difference,
    "structural_break": plot_cusum,
    "cointegration": plot_standardised_pair,
    "correlation": plot_scatter_with_lowess,
}


def plot_hypothesis(frame: pd.DataFrame, h: Hypothesis) -> go.Figure:
    """The figure of ``h``'s test (:data:`PLOTS`); when the data cannot support the test, a figure
    that says why."""
    try:
        return PLOTS[h.test](frame, h)
    except NotTestable as exc:
        fig = _figure(f"{h.id}: not tested", "", "")
        fig.add_annotation(text=f"Not tested: {exc}.", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return fig
