"""Forecasting models behind one small interface.

Every model is a thin class over a library model::

    model = make_model("ets", season_length=7)
    model.fit(train)                      # train: ds, y (+ covariate columns)
    model.predict(future, level=(80, 95)) # future: ds (+ covariates), one row per step

``predict`` returns ``mean`` and ``lo-<level>`` / ``hi-<level>`` columns. Models marked
``conditional`` use the *observed* future temperature: they are conditional forecasts,
reported beside the univariate models but never chosen for production (their future
inputs would themselves have to be forecast). Models whose only covariate is the
``workday`` flag are calendar models: a holiday calendar gives that flag for any future
date (``helpers.data.calendar``), so they can be deployed.
"""

from __future__ import annotations

import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.settings import MODEL_OPTIONS

Level = Sequence[int]
DEFAULT_LEVELS: tuple[int, ...] = (80, 95)
#: Models that use the work-day flag as a known future input (built only with a holiday calendar).
CALENDAR_MODELS = ("ets_calendar", "holt_winters_calendar", "arima_workday")
#: Models that use the observed temperature of the forecast days (conditional forecasts).
TEMPERATURE_MODELS = ("arimax_temperature", "prophet_temperature")


def interval_columns(level: Level = DEFAULT_LEVELS) -> list[str]:
    return [f"{side}-{lv}" for lv in level for side in ("lo", "hi")]


class Forecaster(ABC):
    """fit(train) -> self; predict(future, level) -> DataFrame(mean, lo-*, hi-*)."""

    name: str = "model"
    family: str = "model"
    conditional: bool = False
    covariates: tuple[str, ...] = ()
    #: What the model was built with (``model_catalog`` fills it): part of its cache key.
    settings: dict = {}
    #: Rough cost of a fit against the cheap models' 1: the backtest starts the dear ones first.
    cost: int = 1

    def spec(self) -> dict:
        """Everything that defines this model's forecasts, as plain values (the cross-validation
        cache's key, :mod:`helpers.forecast.cv_cache`)."""
        return {"name": self.name, "class": type(self).__qualname__, "family": self.family,
                "covariates": list(self.covariates), "conditional": self.conditional,
                "settings": self.settings}

    @abstractmethod
    def fit(self, train: pd.DataFrame) -> Forecaster: ...

    @abstractmethod
    def predict(self, future: pd.DataFrame, level: Level = DEFAULT_LEVELS) -> pd.DataFrame: ...

    def fitted_values(self, train: pd.DataFrame) -> np.ndarray:
        """One-step-ahead in-sample predictions after fitting on ``train`` (NaN where undefined)."""
        raise NotImplementedError(f"{self.name} has no in-sample one-step predictions")

    def _exog(self, frame: pd.DataFrame) -> np.ndarray | None:
        if not self.covariates:
            return None
        missing = [c for c in self.covariates if c not in frame or frame[c].isna().any()]
        if missing:
            raise ValueError(f"{self.name} needs complete covariates {list(self.covariates)}; missing: {missing}")
        return frame[list(self.covariates)].to_numpy(dtype=float)


class StatsForecastModel(Forecaster):
    """A statsforecast model; ``factory`` builds a fresh one for each fit."""

    def __init__(self, name: str, family: str, factory: Callable[[], object], covariates: tuple[str, ...] = (),
                 conditional: bool = False, cost: int = 1) -> None:
        self.name, self.family, self.factory = name, family, factory
        self.covariates, self.conditional, self.cost = covariates, conditional, cost

    def fit(self, train: pd.DataFrame) -> StatsForecastModel:
        self.model_ = self.factory()
        X = self._exog(train)
        self.model_.fit(train["y"].to_numpy(dtype=float), X)  # type: ignore[attr-defined]
        return self

    def predict(self, future: pd.DataFrame, level: Level = DEFAULT_LEVELS) -> pd.DataFrame:
        out = self.model_.predict(len(future), X=self._exog(future), level=list(level))  # type: ignore[attr-defined]
        return pd.DataFrame({k: np.asarray(out[k], dtype=float) for k in ["mean", *interval_columns(level)]})

    def fitted_values(self, train: pd.DataFrame) -> np.ndarray:
        if self.covariates:
            return super().fitted_values(train)
        out = self.factory().forecast(y=train["y"].to_numpy(dtype=float), h=1, fitted=True)  # type: ignore[attr-defined]
        return np.asarray(out["fitted"], dtype=float)


class CalendarAdjusted(Forecaster):
    """A univariate model fitted on the series with public-holiday effects taken out.

    A public holiday on a weekday (``workday == 0`` from Monday to Friday) looks like a
    Sunday; left in, it drags the smoothed level of the days after it, and the weekly
    seasonal pattern repeats it a week later. The effect is estimated on the training data
    as the mean difference between each holiday and the same weekday a week before and a
    week after (the ones that are not holidays), subtracted before fitting and added back on
    future holidays. With no holiday in the training data the effect is zero.
    """

    covariates = ("workday",)

    def __init__(self, name: str, base: Forecaster) -> None:
        self.name, self.family, self.base, self.cost = name, base.family, base, base.cost

    @staticmethod
    def holidays(frame: pd.DataFrame) -> np.ndarray:
        return ((frame["ds"].dt.dayofweek < 5) & (frame["workday"] == 0)).to_numpy()

    def _adjusted(self, train: pd.DataFrame) -> pd.DataFrame:
        self._exog(train)
        y, holiday = train["y"].to_numpy(dtype=float), self.holidays(train)
        days = train["ds"].to_numpy()
        week = np.timedelta64(7, "D")
        position = {d: i for i, d in enumerate(days)}
        effects = []
        for i in np.flatnonzero(holiday):
            around = [position.get(days[i] + k * week) for k in (-1, 1)]
            reference = [y[j] for j in around if j is not None and not holiday[j]]
            if reference:
                effects.append(y[i] - np.mean(reference))
        self.effect_ = float(np.mean(effects)) if effects else 0.0
        return train.assign(y=y - self.effect_ * holiday)

    def fit(self, train: pd.DataFrame) -> CalendarAdjusted:
        self.base.fit(self._adjusted(train))
        return self

    def predict(self, future: pd.DataFrame, level: Level = DEFAULT_LEVELS) -> pd.DataFrame:
        self._exog(future)
        return self.base.predict(future, level).add(self.effect_ * self.holidays(future), axis=0)

    def fitted_values(self, train: pd.DataFrame) -> np.ndarray:
        adjusted = self._adjusted(train)
        return self.base.fitted_values(adjusted) + self.effect_ * self.holidays(train)


#: Roots of the AR and MA polynomials closer to the unit circle than this are treated as on it.
ROOT_MARGIN = 1e-3
#: Libraries that can fit the explicit order grid (``SarimaGridModel(engine=...)``).
SARIMA_ENGINES = ("statsforecast", "pmdarima")
#: Gradient tolerance of the CSS fits that rank the candidates. statsforecast's default, 1e-8,
#: is finer than its numerical gradient resolves, so BFGS iterates until it loses precision; at
#: 1e-6 the CSS AICs on the daily folds move by less than 0.01 and the ranking is 20-40% faster.
CSS_TOLERANCE = 1e-6


def stationary_and_invertible(phi: Sequence[float], theta: Sequence[float]) -> bool:
    """True when every root of the AR polynomial ``1 - phi_1 B - ... - phi_k B^k`` and of the
    MA polynomial ``1 + theta_1 B + ... + theta_l B^l`` lies outside the unit circle by ``ROOT_MARGIN``.

    Args:
        phi, theta: coefficients of the full polynomials, seasonal parts multiplied in:
            ``(1 - 0.5B)(1 - 0.3B^7)`` is ``phi = (0.5, 0, 0, 0, 0, 0, 0.3, -0.15)``.

    An AIC search can end on the boundary (AR coefficients 2 and -1: a unit root the
    differencing order did not take out), where the forecast variance is NaN.
    """
    phi, theta = np.asarray(phi, dtype=float), np.asarray(theta, dtype=float)
    if not (np.isfinite(phi).all() and np.isfinite(theta).all()):
        return False
    poly = np.polynomial.polynomial
    roots = np.concatenate([poly.polyroots(np.r_[1.0, -phi]), poly.polyroots(np.r_[1.0, theta])])
    return bool(np.all(np.abs(roots) > 1 + ROOT_MARGIN))


class SarimaGridModel(Forecaster):
    """Explicit (p,d,q)(P,D,Q)m grid, chosen by AIC on the training data only.

    d and D come from unit-root tests (pmdarima's ``ndiffs``: KPSS; ``nsdiffs``: OCSB); candidate
    p and q are the lags up to ``max_order`` whose PACF / ACF of the differenced series exceed
    the white-noise bound, plus 0 (Box-Jenkins identification); P and Q are 0 or 1. Both
    engines fit the same candidates and drop any that is not stationary and invertible:

    - ``statsforecast`` (default): ``statsforecast.models.ARIMA``. With ``approximation`` it
      ranks the candidates by an AIC from a conditional-sum-of-squares fit and refits them by
      maximum likelihood (CSS-ML) in that order until one passes the root check, as R's
      ``forecast::auto.arima(approximation=TRUE)`` and statsforecast's ``AutoARIMA`` do; without
      it, every candidate is fitted by CSS-ML (3x slower on the daily folds, same orders on 9 of 10).
    - ``pmdarima``: every candidate by exact maximum likelihood (statsmodels' SARIMAX), the
      reference the benchmark compares against (``bench/run.py --only arima_grid``).

    After ``fit``: ``order_`` (p, d, q), ``seasonal_order_`` (P, D, Q, m), ``aic_`` (of the
    maximum-likelihood fit) and ``model_`` (the library's fitted model).
    """

    name, family, cost = "sarima_grid", "ARIMA", 3

    def __init__(self, season_length: int, max_order: int = 2, engine: str = "statsforecast",
                 approximation: bool = True) -> None:
        if engine not in SARIMA_ENGINES:
            raise ValueError(f"engine must be one of {', '.join(SARIMA_ENGINES)}; got {engine!r}")
        self.m, self.max_order, self.engine, self.approximation = season_length, max_order, engine, approximation

    def candidate_orders(self, y: np.ndarray) -> tuple[int, int, list[int], list[int]]:
        """``d, D`` and the candidate ``p`` and ``q`` values for the series ``y``."""
        import pmdarima as pm
        from statsmodels.tsa.stattools import acf, pacf

        d = int(pm.arima.ndiffs(y, test="kpss", max_d=2))
        D = int(pm.arima.nsdiffs(y, m=self.m, max_D=1)) if self.m > 1 else 0
        z = np.diff(y, n=d) if d else y
        if D:
            z = z[self.m:] - z[:-self.m]
        bound = 1.96 / np.sqrt(len(z))
        lags = range(1, self.max_order + 1)
        partial, auto = pacf(z, nlags=self.max_order), acf(z, nlags=self.max_order)
        p_values = [0] + [k for k in lags if abs(partial[k]) > bound]
        q_values = [0] + [k for k in lags if abs(auto[k]) > bound]
        return d, D, p_values, q_values

    def fit(self, train: pd.DataFrame) -> SarimaGridModel:
        y = train["y"].to_numpy(dtype=float)
        d, D, p_values, q_values = self.candidate_orders(y)
        seasonal = ((0, 0), (1, 0), (0, 1), (1, 1)) if self.m > 1 else ((0, 0),)
        grid = [((p, d, q), (P, D, Q)) for p in p_values for q in q_values for P, Q in seasonal]
        approximate = self.engine == "statsforecast" and self.approximation
        ranked = []
        for position, (order, seasonal_order) in enumerate(grid):
            if approximate:
                model, aic = None, self._css_aic(y, order, seasonal_order)
            else:
                model, aic = self._fit_candidate(y, order, seasonal_order) or (None, None)
            if aic is not None:
                ranked.append((aic, position, model))
        for aic, position, model in sorted(ranked, key=lambda t: t[:2]):  # lowest AIC first, ties in grid order
            order, seasonal_order = grid[position]
            if approximate:
                refit = self._fit_candidate(y, order, seasonal_order)
                if refit is None:
                    continue
                model, aic = refit
            self.model_, self.aic_ = model, aic
            self.order_, self.seasonal_order_ = order, (*seasonal_order, self.m)
            return self
        raise ValueError(f"{self.name}: none of the {len(grid)} ARIMA candidates (d={d}, D={D}) could be fitted as a "
                         "stationary, invertible model; lower max_order or choose another model")

    def _css_aic(self, y: np.ndarray, order: tuple[int, int, int], seasonal_order: tuple[int, int, int]) -> float | None:
        """auto.arima's approximate AIC of a conditional-sum-of-squares fit, ``n* log(sigma^2) +
        2 (parameters + 1)`` with ``n*`` the length after differencing; None when the fit fails or
        is not stationary and invertible. statsforecast's ``arima`` is the estimator behind its
        ``ARIMA`` model; only it takes the optimiser's tolerance."""
        from statsforecast.arima import arima

        with warnings.catch_warnings():
            # At any tolerance BFGS may end on a loss of precision next to the optimum; this
            # fit only ranks the candidates and the chosen one is refitted by CSS-ML.
            warnings.filterwarnings("ignore", "possible convergence problem", UserWarning)
            try:
                fit = arima(y, order=order, seasonal={"order": seasonal_order, "period": self.m},
                            include_mean=order[1] + seasonal_order[1] == 0, method="CSS", tol=CSS_TOLERANCE)
            except (ValueError, np.linalg.LinAlgError):
                return None
        n_star = len(y) - order[1] - seasonal_order[1] * self.m
        with np.errstate(divide="ignore", invalid="ignore"):
            aic = n_star * np.log(fit["sigma2"]) + 2 * (int(fit["mask"].sum()) + 1)
        if np.isnan(aic) or not stationary_and_invertible(fit["model"]["phi"], fit["model"]["theta"]):
            return None
        return float(aic)

    def _fit_candidate(self, y: np.ndarray, order: tuple[int, int, int],
                       seasonal_order: tuple[int, int, int]) -> tuple[object, float] | None:
        """The engine's maximum-likelihood fit and its AIC, or None when the fit fails or is not
        stationary and invertible (a unit root the optimiser ran into: its forecast variance is
        undefined)."""
        with_mean = order[1] + seasonal_order[1] == 0
        model: Any
        if self.engine == "pmdarima":
            import pmdarima as pm

            model = pm.ARIMA(order=order, seasonal_order=(*seasonal_order, self.m), suppress_warnings=True,
                             with_intercept=with_mean)
            try:
                model.fit(y)
            except (ValueError, np.linalg.LinAlgError):
                return None
            result = model.arima_res_
            phi, theta, aic = -result.polynomial_reduced_ar[1:], result.polynomial_reduced_ma[1:], model.aic()
        else:
            from statsforecast.models import ARIMA

            model = ARIMA(order=order, season_length=self.m, seasonal_order=seasonal_order, include_mean=with_mean,
                          method="CSS-ML")
            try:
                model.fit(y)
            except (ValueError, np.linalg.LinAlgError):
                return None
            fit = model.model_
            phi, theta, aic = fit["model"]["phi"], fit["model"]["theta"], fit["aic"]
        if np.isnan(aic) or not stationary_and_invertible(phi, theta):
            return None
        return model, float(aic)

    def fitted_values(self, train: pd.DataFrame) -> np.ndarray:
        self.fit(train)
        if self.engine == "pmdarima":
            fitted = np.asarray(self.model_.predict_in_sample(), dtype=float)
        else:
            fitted = np.asarray(self.model_.predict_in_sample()["fitted"], dtype=float)
        # The first d + D*m steps have no differenced past (pmdarima returns 0 there).
        fitted[:self.order_[1] + self.seasonal_order_[1] * self.m] = np.nan
        return fitted

    def predict(self, future: pd.DataFrame, level: Level = DEFAULT_LEVELS) -> pd.DataFrame:
        h = len(future)
        if self.engine == "statsforecast":
            out = self.model_.predict(h, level=list(level))
            return pd.DataFrame({k: np.asarray(out[k], dtype=float) for k in ["mean", *interval_columns(level)]})
        out = {"mean": np.asarray(self.model_.predict(h), dtype=float)}
        for lv in level:
            _, bounds = self.model_.predict(h, return_conf_int=True, alpha=1 - lv / 100)
            out[f"lo-{lv}"], out[f"hi-{lv}"] = bounds[:, 0], bounds[:, 1]
        return pd.DataFrame(out)[["mean", *interval_columns(level)]]


class ProphetModel(Forecaster):
    """Prophet with optional regressors; intervals from its predictive samples."""

    family, cost = "Prophet", 4

    def __init__(self, name: str, regressors: tuple[str, ...] = (), conditional: bool = False, seed: int = 0,
                 samples: int = 300, changepoint_prior_scale: float = 0.05) -> None:
        self.name, self.covariates, self.conditional, self.seed, self.samples = name, regressors, conditional, seed, samples
        self.changepoint_prior_scale = changepoint_prior_scale

    def fit(self, train: pd.DataFrame) -> ProphetModel:
        from cmdstanpy.utils import get_logger
        from prophet import Prophet

        get_logger().setLevel(logging.WARNING)  # cmdstanpy configures its logger on first use
        logging.getLogger("prophet").setLevel(logging.WARNING)
        self._exog(train)
        model = Prophet(uncertainty_samples=self.samples, daily_seasonality=False,
                        changepoint_prior_scale=self.changepoint_prior_scale)
        for regressor in self.covariates:
            model.add_regressor(regressor)
        np.random.seed(self.seed)  # Prophet draws its uncertainty samples from numpy's global state
        self.model_ = model.fit(train[["ds", "y", *self.covariates]])
        return self

    def predict(self, future: pd.DataFrame, level: Level = DEFAULT_LEVELS) -> pd.DataFrame:
        self._exog(future)
        frame = future[["ds", *self.covariates]]
        np.random.seed(self.seed)
        mean = self.model_.predict(frame)["yhat"].to_numpy()
        draws = self.model_.predictive_samples(frame)["yhat"]
        out = {"mean": mean}
        for lv in level:
            out[f"lo-{lv}"] = np.quantile(draws, (100 - lv) / 200, axis=1)
            out[f"hi-{lv}"] = np.quantile(draws, 1 - (100 - lv) / 200, axis=1)
        return pd.DataFrame(out)[["mean", *interval_columns(level)]]

    def fitted_values(self, train: pd.DataFrame) -> np.ndarray:
        """Prophet's fit to the training days (a smoother, not one-step-ahead predictions)."""
        return self.fit(train).model_.predict(train[["ds", *self.covariates]])["yhat"].to_numpy()


def _statsforecast_models(season_length: int, horizon: int,
                          options: dict[str, dict] | None = None) -> dict[str, Callable[[], Forecaster]]:
    from statsforecast.models import (
        AutoARIMA, AutoETS, Holt, HoltWinters, Naive, SeasonalNaive, SimpleExponentialSmoothingOptimized,
        WindowAverage,
    )
    from statsforecast.utils import ConformalIntervals

    def conformal() -> ConformalIntervals:  # for models without analytic intervals
        return ConformalIntervals(h=horizon, n_windows=3)

    m = season_length
    opts = options or {}
    window = opts.get("window_average", {}).get("window", m)
    ets = opts.get("ets", {}).get("model", "ZZZ")
    arima = {"season_length": m, **opts.get("auto_arima", {})}
    models: dict[str, Callable[[], Forecaster]] = {
        "naive": lambda: StatsForecastModel("naive", "baseline", Naive),
        "seasonal_naive": lambda: StatsForecastModel("seasonal_naive", "baseline", lambda: SeasonalNaive(m)),
        "window_average": lambda: StatsForecastModel(
            "window_average", "baseline", lambda: WindowAverage(window, prediction_intervals=conformal())),
        "ses": lambda: StatsForecastModel(
            "ses", "exponential smoothing", lambda: SimpleExponentialSmoothingOptimized(prediction_intervals=conformal())),
        "holt": lambda: StatsForecastModel("holt", "exponential smoothing", lambda: Holt(season_length=m)),
        "holt_winters": lambda: StatsForecastModel("holt_winters", "exponential smoothing",
                                                   lambda: HoltWinters(season_length=m)),
        "ets": lambda: StatsForecastModel("ets", "exponential smoothing", lambda: AutoETS(season_length=m, model=ets)),
        "auto_arima": lambda: StatsForecastModel("auto_arima", "ARIMA", lambda: AutoARIMA(**arima), cost=3),
    }
    return models


def model_catalog(season_lengths: Sequence[int], horizon: int, names: Sequence[str],
                  has_temperature: bool, has_workday: bool,
                  options: dict[str, dict] | None = None) -> list[Forecaster]:
    """Fresh instances of the named models for a series with the given seasonal periods.

    Names: naive, seasonal_naive, window_average, ses, holt, holt_winters, ets, auto_arima,
    sarima_grid, mstl, prophet; with a work-day flag also ets_calendar, holt_winters_calendar
    (holiday-adjusted, see ``CalendarAdjusted``) and arima_workday (regression on the flag
    with ARIMA errors); with temperature the conditional arimax_temperature and
    prophet_temperature. Models whose covariates the series lacks are skipped.

    ``options`` maps a model name to its settings (:data:`MODEL_OPTIONS` lists which); each
    model records them, with the seasonal periods and horizon, in ``settings``.
    """
    from statsforecast.models import MSTL, AutoARIMA, AutoETS

    opts = options or {}
    unknown_options = {name: sorted(set(given) - set(MODEL_OPTIONS.get(name, ())))
                       for name, given in opts.items() if set(given) - set(MODEL_OPTIONS.get(name, ()))}
    if unknown_options:
        raise ValueError(f"unknown model settings {unknown_options}; each model takes {MODEL_OPTIONS}")
    m = season_lengths[0]
    builders = _statsforecast_models(m, horizon, opts)

    def arima(name: str) -> Callable[[], object]:
        return lambda: AutoARIMA(season_length=m, **opts.get(name, {}))

    builders["sarima_grid"] = lambda: SarimaGridModel(m, **opts.get("sarima_grid", {}))
    builders["mstl"] = lambda: StatsForecastModel(
        "mstl", "decomposition", lambda: MSTL(season_length=list(season_lengths), trend_forecaster=AutoETS(model="ZZN")),
        cost=2)
    calendar = ("workday",) if has_workday else ()
    builders["prophet"] = lambda: ProphetModel("prophet", calendar, **opts.get("prophet", {}))
    needs_workday = set(CALENDAR_MODELS)
    if has_workday:
        univariate = _statsforecast_models(m, horizon, {"ets": opts.get("ets_calendar", {})})
        builders["ets_calendar"] = lambda: CalendarAdjusted("ets_calendar", univariate["ets"]())
        builders["holt_winters_calendar"] = lambda: CalendarAdjusted("holt_winters_calendar",
                                                                     univariate["holt_winters"]())
        builders["arima_workday"] = lambda: StatsForecastModel(
            "arima_workday", "ARIMA", arima("arima_workday"), covariates=calendar, cost=3)
    needs_temperature = set(TEMPERATURE_MODELS)
    if has_temperature:
        builders["arimax_temperature"] = lambda: StatsForecastModel(
            "arimax_temperature", "ARIMA", arima("arimax_temperature"),
            covariates=("degree_days", *calendar), conditional=True, cost=3)
        builders["prophet_temperature"] = lambda: ProphetModel(
            "prophet_temperature", ("degree_days", *calendar), conditional=True, **opts.get("prophet_temperature", {}))
    unknown = sorted(set(names) - set(builders) - needs_workday - needs_temperature)
    if unknown:
        raise ValueError(f"unknown models {unknown}; available: {sorted(set(builders) | needs_workday | needs_temperature)}")
    models = [builders[name]() for name in names if name in builders]
    for model in models:
        model.settings = {"season_lengths": list(season_lengths), "horizon": horizon, **opts.get(model.name, {})}
    return models
