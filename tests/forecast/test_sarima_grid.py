"""The explicit SARIMA order grid on simulated series with known orders, with both engines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.forecast import models as fc
from tests.support import daily_series

PHI, SEASONAL_PHI, M, MEAN = 0.5, 0.4, 7, 100.0


def _seasonal_ar(n: int, seed: int, burn: int = 200) -> np.ndarray:
    """(1 - 0.5B)(1 - 0.4B^7)(y - 100) = e with e ~ N(0, 1): SARIMA(1,0,0)(1,0,0)7."""
    rng = np.random.default_rng(seed)
    e, x = rng.normal(size=n + burn), np.zeros(n + burn)
    for t in range(M + 1, n + burn):
        x[t] = PHI * x[t - 1] + SEASONAL_PHI * x[t - M] - PHI * SEASONAL_PHI * x[t - M - 1] + e[t]
    return MEAN + x[burn:]


def _continue(y: np.ndarray, h: int, paths: int, seed: int) -> np.ndarray:
    """``paths`` x ``h`` draws of the process' next h steps given ``y`` (noise off: the true mean)."""
    x = np.tile(y[-(M + 1):] - MEAN, (paths, 1))
    noise = np.random.default_rng(seed).normal(size=(paths, h)) if seed >= 0 else np.zeros((paths, h))
    for t in range(h):
        step = PHI * x[:, -1] + SEASONAL_PHI * x[:, -M] - PHI * SEASONAL_PHI * x[:, -M - 1] + noise[:, t]
        x = np.column_stack([x, step])
    return MEAN + x[:, -h:]


def _frame(y: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"ds": pd.date_range("2020-01-01", periods=len(y)), "y": y})


def _future(h: int) -> pd.DataFrame:
    return pd.DataFrame({"ds": pd.date_range("2030-01-01", periods=h)})


@pytest.fixture(scope="module")
def simulated() -> tuple[np.ndarray, dict[str, fc.SarimaGridModel]]:
    y = _seasonal_ar(160, seed=8)
    return y, {engine: fc.SarimaGridModel(M, max_order=1, engine=engine).fit(_frame(y)) for engine in fc.SARIMA_ENGINES}


def test_both_engines_find_the_known_orders(simulated):
    y, fits = simulated
    for model in fits.values():
        assert (model.order_, model.seasonal_order_) == ((1, 0, 0), (1, 0, 0, 7))
    # With d = D = 0 both maximise the same exact Gaussian likelihood, so their AICs compare:
    # pmdarima's optimiser (L-BFGS, at most 50 iterations) stops short of the maximum (by 2.9 here).
    assert fits["statsforecast"].aic_ < fits["pmdarima"].aic_ < fits["statsforecast"].aic_ + 5
    expected = _continue(y, 14, 1, seed=-1)[0]
    for model in fits.values():
        error = model.predict(_future(14))["mean"].to_numpy() - expected
        assert np.sqrt(np.mean(error**2)) < 0.2  # of a noise sd of 1
    exact = fc.SarimaGridModel(M, max_order=1, approximation=False).fit(_frame(y))
    fast = fits["statsforecast"]
    assert (exact.order_, exact.seasonal_order_) == (fast.order_, fast.seasonal_order_)
    assert exact.aic_ == pytest.approx(fast.aic_)


def test_statsforecast_intervals_are_ordered_and_cover_about_nominally():
    y = _seasonal_ar(500, seed=1)
    model = fc.SarimaGridModel(M, max_order=1).fit(_frame(y))
    out = model.predict(_future(14))
    assert list(out.columns) == ["mean", "lo-80", "hi-80", "lo-95", "hi-95"]
    assert ((out["lo-95"] < out["lo-80"]) & (out["lo-80"] < out["mean"]) & (out["mean"] < out["hi-80"])
            & (out["hi-80"] < out["hi-95"])).all()
    paths = _continue(y, 14, 4000, seed=2)  # the true process from the end of the training data
    for level in (80, 95):
        inside = (paths >= out[f"lo-{level}"].to_numpy()) & (paths <= out[f"hi-{level}"].to_numpy())
        assert inside.mean() == pytest.approx(level / 100, abs=0.04)


def test_the_root_check_rejects_unit_roots_and_keeps_stationary_fits():
    from statsforecast.models import ARIMA

    walk = np.cumsum(np.random.default_rng(3).normal(size=300))
    # an AR(2) held at phi = (2, -1): 1 - 2B + B^2 = (1 - B)^2, the boundary an AIC search can reach
    boundary = ARIMA(order=(2, 0, 0), include_mean=False, fixed={"ar1": 2.0, "ar2": -1.0}).fit(walk).model_["model"]
    assert not fc.stationary_and_invertible(boundary["phi"], boundary["theta"])
    ar1 = _seasonal_ar(400, seed=4)
    fitted = ARIMA(order=(1, 0, 0)).fit(ar1).model_["model"]
    assert fc.stationary_and_invertible(fitted["phi"], fitted["theta"])
    # seasonal parts multiplied in: (1 - 0.5B)(1 - B^7) has a seasonal unit root
    assert not fc.stationary_and_invertible([0.5, 0, 0, 0, 0, 0, 1.0, -0.5], [])
    assert fc.stationary_and_invertible([0.5, 0, 0, 0, 0, 0, 0.4, -0.2], [0.3])
    assert not fc.stationary_and_invertible([], [1.0])  # MA root on the unit circle: not invertible
    assert not fc.stationary_and_invertible([1 / 1.0005], [])  # inside ROOT_MARGIN of the circle
    assert fc.stationary_and_invertible([1 / 1.01], [])
    assert not fc.stationary_and_invertible([np.nan], [])


@pytest.mark.parametrize("engine", fc.SARIMA_ENGINES)
def test_fitted_values_are_missing_for_the_first_d_plus_D_m_days(engine):
    """A seasonal random walk (each weekday its own walk): D = 1, and a one-step prediction
    is about last week's value from day 8 on."""
    rng = np.random.default_rng(0)
    weeks = 14
    y = (100 + np.tile(10 * np.sin(2 * np.pi * np.arange(M) / M), weeks)
         + np.cumsum(rng.normal(size=(weeks, M)), axis=0).ravel())
    model = fc.SarimaGridModel(M, engine=engine)
    fitted = model.fitted_values(_frame(y))
    assert (model.order_[1], model.seasonal_order_[1]) == (0, 1)
    assert np.isnan(fitted[:M]).all() and np.isfinite(fitted[M:]).all()
    assert np.sqrt(np.mean((fitted[M:] - y[:-M]) ** 2)) < 0.3


@pytest.mark.parametrize("engine", fc.SARIMA_ENGINES)
def test_differencing_orders_come_from_the_unit_root_tests(engine):
    rng = np.random.default_rng(1)
    walk = daily_series().assign(y=100 + np.cumsum(rng.normal(0, 1, 140)))
    assert fc.SarimaGridModel(M, engine=engine).fit(walk).order_[1] == 1
    noise = daily_series(season=0.0)
    assert fc.SarimaGridModel(M, engine=engine).fit(noise).order_[1] == 0


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine must be one of statsforecast, pmdarima; got 'statsmodels'"):
        fc.SarimaGridModel(M, engine="statsmodels")
