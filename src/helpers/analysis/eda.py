"""Exploratory analysis: tables and interactive plotly figures, one per call.

Every ``plot_*`` returns a figure and leaves showing or saving it to the caller.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from statsmodels.tsa.seasonal import MSTL, STL
from statsmodels.tsa.stattools import acf, pacf

from helpers.data.series import DEGREE_DAY_BASE, completeness, require_length

_LAYOUT = dict(height=380, margin=dict(t=50, b=40, l=60, r=20))


def describe_dataset(view: pd.DataFrame, freq: str, source: str) -> pd.DataFrame:
    """Source, time range, granularity and completeness of a :func:`load_series` frame."""
    items = {"source": source, "first timestamp": str(view["ds"].min()), "last timestamp": str(view["ds"].max()),
             "granularity": freq, **completeness(view), "has temperature": bool(view["temperature"].notna().any()),
             "has work-day flag": bool(view["workday"].notna().any())}
    return pd.DataFrame({"item": list(items), "value": list(items.values())})


def summary_statistics(view: pd.DataFrame) -> pd.DataFrame:
    """count, mean, sd, quantiles, skewness and kurtosis of target and covariates."""
    columns = [c for c in ("y", "temperature") if view[c].notna().any()]
    table = view[columns].describe().T
    table["skew"] = view[columns].skew()
    table["kurtosis"] = view[columns].kurt()
    return table.round(3)


def plot_series_with_rolling(view: pd.DataFrame, windows: dict[str, int], title: str) -> go.Figure:
    """The series with centred rolling means; ``windows`` maps a label to a window in steps."""
    y = view.set_index("ds")["y"]
    fig = go.Figure()
    fig.add_scatter(x=y.index, y=y, name="observed", line=dict(width=0.6), opacity=0.5)
    for label, window in windows.items():
        fig.add_scatter(x=y.index, y=y.rolling(window, center=True, min_periods=window // 2).mean(), name=label)
    fig.update_layout(title=title, xaxis_title="time", yaxis_title="y", **_LAYOUT)
    return fig


def _components_figure(components: pd.DataFrame, title: str) -> go.Figure:
    fig = make_subplots(rows=len(components.columns), cols=1, shared_xaxes=True,
                        subplot_titles=list(components.columns), vertical_spacing=0.04)
    for i, column in enumerate(components.columns, start=1):
        fig.add_scatter(x=components.index, y=components[column], row=i, col=1, showlegend=False,
                        line=dict(width=0.8))
    fig.update_layout(title=title, height=160 * len(components.columns) + 60, margin=dict(t=60, b=30, l=60, r=20))
    return fig


def stl_decomposition(y: pd.Series, period: int) -> pd.DataFrame:
    """Robust STL (Cleveland et al., 1990): observed, trend, seasonal, remainder.

    Needs two full cycles (``2 * period`` values); statsmodels would decompose fewer without a word.
    """
    require_length(len(y), 2 * period, f"STL with period {period}", "two full cycles")
    result = STL(y.interpolate(limit_direction="both"), period=period, robust=True).fit()
    return pd.DataFrame({"observed": result.observed, "trend": result.trend, "seasonal": result.seasonal,
                         "remainder": result.resid}, index=y.index)


def mstl_decomposition(y: pd.Series, periods: tuple[int, ...]) -> pd.DataFrame:
    """MSTL (Bandara et al., 2021): one seasonal component per period, e.g. daily and weekly.

    Needs more than two cycles of the longest period: statsmodels drops a period of at least
    half the series (and fails when it drops them all).
    """
    longest = max(periods)
    require_length(len(y), 2 * longest + 1, f"MSTL with periods {', '.join(map(str, periods))}",
                   f"more than two cycles of {longest}")
    result = MSTL(y.interpolate(limit_direction="both"), periods=periods).fit()
    seasonal = result.seasonal if isinstance(result.seasonal, pd.DataFrame) else result.seasonal.to_frame()
    frame = pd.DataFrame({"observed": result.observed, "trend": result.trend}, index=y.index)
    for column in seasonal.columns:
        frame[str(column)] = seasonal[column].to_numpy()
    frame["remainder"] = np.asarray(result.resid)
    return frame


def plot_decomposition(components: pd.DataFrame, title: str) -> go.Figure:
    return _components_figure(components, title)


def seasonal_strength(components: pd.DataFrame, seasonal_column: str) -> float:
    """Strength of seasonality, max(0, 1 - Var(R) / Var(S + R)) (Wang, Smith & Hyndman, 2006)."""
    remainder = components["remainder"]
    return float(max(0.0, 1 - remainder.var() / (components[seasonal_column] + remainder).var()))


def missing_by_month(view: pd.DataFrame) -> pd.DataFrame:
    """Per month: steps, interpolated steps and still-missing steps."""
    months = view["ds"].dt.to_period("M").astype(str)
    grouped = view.assign(missing=view["y"].isna()).groupby(months)
    return pd.DataFrame({"steps": grouped.size(), "interpolated": grouped["filled"].sum(),
                         "missing": grouped["missing"].sum()}).rename_axis("month").reset_index()


def correlation_features(daily: pd.DataFrame, lags: tuple[int, ...] = (1, 7)) -> pd.DataFrame:
    """Daily target with covariates, lags and heating / cooling degree-days (base 18 C)."""
    features = pd.DataFrame({"y": daily["y"]}, index=daily.index)
    for lag in lags:
        features[f"y_lag_{lag}"] = daily["y"].shift(lag)
    if daily["temperature"].notna().any():
        features["temperature"] = daily["temperature"]
        features["heating_degree_days"] = (DEGREE_DAY_BASE - daily["temperature"]).clip(lower=0)
        features["cooling_degree_days"] = (daily["temperature"] - DEGREE_DAY_BASE).clip(lower=0)
    if daily["workday"].notna().any():
        features["workday"] = daily["workday"]
    return features


def plot_correlation_heatmap(features: pd.DataFrame, method: str = "spearman") -> go.Figure:
    corr = features.corr(method=method).round(2)
    fig = go.Figure(go.Heatmap(z=corr.to_numpy(), x=corr.columns, y=corr.index, zmin=-1, zmax=1,
                               colorscale="RdBu", reversescale=True, text=corr.to_numpy(), texttemplate="%{text}"))
    fig.update_layout(title=f"{method.title()} correlations", height=480, margin=dict(t=50, b=40, l=140, r=20))
    return fig


def plot_acf_pacf(y: pd.Series, lags: int, title: str) -> go.Figure:
    """ACF and PACF with 95% bounds for white noise (+-1.96 / sqrt(n)).

    The PACF estimates ``lags`` lags only from a series of more than twice that many values.
    """
    values = y.dropna().to_numpy()
    require_length(len(values), 2 * (lags + 1), f"ACF/PACF over {lags} lags", "twice the lags plus two, observed")
    bound = 1.96 / np.sqrt(len(values))
    fig = make_subplots(rows=1, cols=2, subplot_titles=["ACF", "PACF"])
    for col, coefficients in enumerate((acf(values, nlags=lags), pacf(values, nlags=lags, method="ywm")), start=1):
        fig.add_bar(x=np.arange(1, lags + 1), y=coefficients[1:], row=1, col=col, showlegend=False)
        for sign in (1, -1):
            fig.add_hline(y=sign * bound, line_dash="dash", line_color="grey", row=1, col=col)
    fig.update_layout(title=title, xaxis_title="lag", xaxis2_title="lag", **_LAYOUT)
    return fig


def plot_demand_vs_temperature(daily: pd.DataFrame) -> go.Figure:
    """Daily demand against mean temperature, coloured by the work-day flag."""
    fig = go.Figure()
    for flag, name in ((1.0, "work day"), (0.0, "non-work day")):
        part = daily[daily["workday"] == flag]
        fig.add_scatter(x=part["temperature"], y=part["y"], mode="markers", name=name, marker=dict(size=5))
    fig.update_layout(title="Daily demand against daily mean temperature", xaxis_title="temperature (deg C)",
                      yaxis_title="daily total", **_LAYOUT)
    return fig
