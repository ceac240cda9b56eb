"""Every model on synthetic data with a known pattern; the splitter; metrics; selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.forecast import backtest as bt
from helpers.forecast import models as fc
from tests.support import daily_series

ALL = ["naive", "seasonal_naive", "window_average", "ses", "holt", "holt_winters", "ets", "auto_arima",
       "sarima_grid", "mstl", "prophet", "ets_calendar", "holt_winters_calendar", "arima_workday",
       "arimax_temperature", "prophet_temperature"]


@pytest.mark.parametrize("name", ALL)
def test_every_model_returns_h_points_with_ordered_intervals(name):
    frame = daily_series()
    (model,) = fc.model_catalog([7], 14, [name], has_temperature=True, has_workday=True)
    train, future = frame.iloc[:-14], frame.iloc[-14:].drop(columns="y")
    out = model.fit(train).predict(future.reset_index(drop=True))
    assert list(out.columns) == ["mean", "lo-80", "hi-80", "lo-95", "hi-95"] and len(out) == 14
    assert np.isfinite(out.to_numpy()).all()
    tol = 1e-6
    assert (out["lo-95"] <= out["lo-80"] + tol).all() and (out["lo-80"] <= out["mean"] + tol).all()
    assert (out["mean"] <= out["hi-80"] + tol).all() and (out["hi-80"] <= out["hi-95"] + tol).all()


def _rmse(name, frame, h=14):
    (model,) = fc.model_catalog([7], h, [name], True, True)
    out = model.fit(frame.iloc[:-h]).predict(frame.iloc[-h:].drop(columns="y").reset_index(drop=True))
    return float(np.sqrt(((frame["y"].iloc[-h:].to_numpy() - out["mean"].to_numpy()) ** 2).mean()))


def test_seasonal_naive_beats_naive_on_a_seasonal_series():
    frame = daily_series(season=10, noise=0.5)
    assert _rmse("seasonal_naive", frame) < 0.5 * _rmse("naive", frame)


def test_holt_beats_simple_smoothing_on_a_trend():
    frame = daily_series(trend=2.0, season=0.0, noise=1.0)
    assert _rmse("holt", frame) < 0.5 * _rmse("ses", frame)


def _with_holidays(frame, holidays, effect):
    """Public holidays on the given weekdays: work day 0 and demand lowered by ``effect``."""
    is_holiday = frame["ds"].isin(pd.to_datetime(holidays))
    return frame.assign(y=frame["y"] - effect * is_holiday, workday=frame["workday"].where(~is_holiday, 0.0))


def test_calendar_adjustment_recovers_a_known_holiday_effect():
    # Weekday holidays with a known drop of 30; the last one falls on the final training day.
    holidays = ["2020-01-21", "2020-02-18", "2020-03-17", "2020-04-06"]
    frame = _with_holidays(daily_series(n=111, season=10, noise=0.5), holidays, effect=30)
    train, future = frame.iloc[:-14], frame.iloc[-14:]
    adjusted = fc.CalendarAdjusted("ets_calendar", fc.model_catalog([7], 14, ["ets"], False, False)[0])
    adjusted.fit(train)
    assert adjusted.effect_ == pytest.approx(-30, abs=2)
    # The plain model's level is dragged down by the holiday at the cutoff; the adjusted one is not.
    assert _rmse("ets_calendar", frame) < 0.5 * _rmse("ets", frame)
    # A future holiday gets the effect added back.
    future = future.assign(workday=np.where(future["ds"] == "2020-04-14", 0.0, future["workday"]))
    out = adjusted.predict(future.drop(columns="y").reset_index(drop=True))
    plain = adjusted.base.predict(future.drop(columns="y").reset_index(drop=True))
    assert ((out - plain).abs().sum(axis=1) > 0).sum() == 1
    # in-sample, the effect is added back on the training holidays: the fit follows their drop of 30
    residuals = train["y"].to_numpy() - adjusted.fitted_values(train)
    assert adjusted.holidays(train).sum() == 4 and np.abs(residuals[adjusted.holidays(train)]).max() < 5
    assert np.nanstd(residuals) < 5


def test_calendar_adjustment_without_holidays_is_the_base_model():
    frame = daily_series(n=60)
    adjusted = fc.model_catalog([7], 14, ["holt_winters_calendar"], False, True)[0].fit(frame)
    assert adjusted.effect_ == 0.0


def _step(n=80, at=40):
    """100 for ``at`` days, then 150: a one-step-ahead prediction cannot know the jump on day ``at``."""
    return daily_series(n=n).assign(y=np.r_[np.full(at, 100.0), np.full(n - at, 150.0)])


def test_in_sample_fits_are_one_step_ahead():
    (ses,) = fc.model_catalog([7], 14, ["ses"], False, True)
    fitted = ses.fitted_values(_step())
    # undefined before the first value; the level until the jump, still 100 on the jump day,
    # then catching up (the optimised smoothing weight is close to 1 on a clean step)
    assert np.isnan(fitted[0]) and np.allclose(fitted[1:41], 100)
    assert 140 < fitted[41] < 150 and fitted[-1] == pytest.approx(150)
    (sarima,) = fc.model_catalog([7], 14, ["sarima_grid"], False, True)
    fitted = sarima.fitted_values(_step())
    np.testing.assert_allclose(fitted[1:41], 100, atol=1e-6)
    assert fitted[41] == pytest.approx(150, abs=1e-6)


def test_prophet_in_sample_fit_follows_the_weekly_cycle():
    frame = daily_series(n=80)  # weekly sine of amplitude 10 and noise of sd 1
    (prophet,) = fc.model_catalog([7], 14, ["prophet"], False, True)
    residuals = frame["y"].to_numpy() - prophet.fitted_values(frame)
    assert np.std(residuals) < 1.5 < np.std(frame["y"])


def test_sarima_in_sample_fit_is_missing_where_it_has_no_past():
    (sarima,) = fc.model_catalog([7], 14, ["sarima_grid"], False, True)
    assert np.isnan(sarima.fitted_values(_step())[0])


def test_models_without_in_sample_fits_say_so():
    (model,) = fc.model_catalog([7], 14, ["arima_workday"], False, True)
    with pytest.raises(NotImplementedError, match="arima_workday has no in-sample"):
        model.fitted_values(daily_series(n=80))


def test_covariate_models_need_their_covariates():
    (model,) = fc.model_catalog([7], 14, ["arimax_temperature"], True, True)
    with pytest.raises(ValueError, match="needs complete covariates"):
        model.fit(daily_series().drop(columns="degree_days"))
    assert fc.model_catalog([7], 14, ["arimax_temperature", "naive"], False, False)[0].name == "naive"
    with pytest.raises(ValueError, match="unknown models.*ets_calendar"):
        fc.model_catalog([7], 14, ["magic"], False, False)
    assert [m.name for m in fc.model_catalog([7], 14, ["ets_calendar", "ses"], True, False)] == ["ses"]


class _Spy(fc.Forecaster):
    name = "spy"

    def __init__(self):
        self.train_ends = []

    def fit(self, train):
        self.train_ends.append(train["ds"].max())
        self.last = train["y"].iloc[-1]
        return self

    def predict(self, future, level=fc.DEFAULT_LEVELS):
        assert "y" not in future.columns  # the future's actuals are never shown to the model
        n = len(future)
        return pd.DataFrame({"mean": np.full(n, self.last), "lo-80": self.last - 1, "hi-80": self.last + 1,
                             "lo-95": self.last - 2, "hi-95": self.last + 2})


def test_splitter_never_leaks_the_future():
    frame = daily_series(n=100)
    cutoffs = bt.make_cutoffs(frame["ds"], h=7, n_folds=5, min_train=50)
    spy = _Spy()
    forecasts, timings = bt.backtest(frame, [spy], 7, cutoffs)
    assert (forecasts["cutoff"] < forecasts["ds"]).all()
    assert spy.train_ends == cutoffs  # training ends exactly at the cutoff
    assert forecasts.groupby("cutoff").size().eq(7).all() and len(timings) == 5
    assert cutoffs[-1] == frame["ds"].iloc[-8] and cutoffs[0] == frame["ds"].iloc[49]


def test_make_cutoffs_rejects_impossible_requests():
    with pytest.raises(ValueError, match="cannot hold"):
        bt.make_cutoffs(pd.Series(pd.date_range("2020-01-01", periods=20)), h=14, n_folds=5, min_train=10)


def test_backtest_needs_a_completedaily_series():
    frame = daily_series(n=60)
    frame.loc[5, "y"] = np.nan
    with pytest.raises(ValueError, match="complete series"):
        bt.backtest(frame, [_Spy()], 7, [frame["ds"].iloc[30]])


def test_metrics_equal_hand_computed_values():
    frame = pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2020-01-01", periods=6), "y": [1., 2, 3, 4, 5, 6]})
    cutoff = frame["ds"].iloc[2]
    forecasts = pd.DataFrame({"unique_id": "s", "ds": frame["ds"].iloc[3:].to_numpy(), "cutoff": cutoff,
                              "y": [4., 5, 6], "m": [5., 5, 3], "m-lo-80": [3., 4, 4], "m-hi-80": [6., 6, 5],
                              "m-lo-95": [2., 3, 3], "m-hi-95": [7., 7, 7]})
    scores = bt.score(forecasts, frame, season_length=1)
    got = scores.set_index("metric")["value"]
    assert got["mae"] == pytest.approx((1 + 0 + 3) / 3)
    assert got["rmse"] == pytest.approx(np.sqrt((1 + 0 + 9) / 3))
    assert got["mape"] == pytest.approx(100 * (1 / 4 + 0 + 3 / 6) / 3)
    assert got["mase"] == pytest.approx((4 / 3) / 1.0)  # in-sample naive MAE of 1,2,3 is 1
    assert got["coverage_80"] == pytest.approx(2 / 3) and got["coverage_95"] == pytest.approx(1.0)
    # change from the previous actual (3, 4, 5): actual up/up/up, forecast up/up/down -> 2 of 3
    assert got["directional_accuracy"] == pytest.approx(2 / 3)


def test_metrics_are_utilsforecasts_on_many_folds_and_models():
    from utilsforecast import losses

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2020-01-01", periods=60), "y": rng.normal(5, 2, 60)})
    frame.loc[[45, 52], "y"] = 0.0  # MAPE leaves these steps out
    cutoffs = bt.make_cutoffs(frame["ds"], 5, 4, 30)
    pieces = []
    for cutoff in cutoffs:
        fold = frame[frame["ds"] > cutoff].head(5).assign(cutoff=cutoff)
        for m in ("a", "b", "c"):
            fold[m] = fold["y"] + rng.normal(0, 1, len(fold))
            for lv, w in ((80, 1.0), (95, 2.0)):
                fold[f"{m}-lo-{lv}"], fold[f"{m}-hi-{lv}"] = fold[m] - w, fold[m] + w
        pieces.append(fold)
    forecasts = pd.concat(pieces, ignore_index=True)
    got = bt.score(forecasts, frame, season_length=7).set_index(["cutoff", "metric", "model"])["value"]
    for cutoff, fold in forecasts.groupby("cutoff"):
        train = frame[frame["ds"] <= cutoff]
        expected = {"mae": losses.mae(fold, ["a", "b", "c"]), "rmse": losses.rmse(fold, ["a", "b", "c"]),
                    "mape": losses.mape(fold, ["a", "b", "c"]), "mase": losses.mase(fold, ["a", "b", "c"], 7, train),
                    **{f"coverage_{lv}": losses.coverage(fold, ["a", "b", "c"], lv) for lv in (80, 95)}}
        for metric, table in expected.items():
            for m in ("a", "b", "c"):
                want = float(table[m].iloc[0]) * (100 if metric == "mape" else 1)
                assert got[cutoff, metric, m] == pytest.approx(want, rel=1e-12), (cutoff, metric, m)


def test_ensemble_is_the_member_mean():
    forecasts = pd.DataFrame({"a": [1.0, 3.0], "b": [3.0, 5.0]})
    for m in "ab":
        for c in fc.interval_columns():
            forecasts[f"{m}-{c}"] = forecasts[m]
    out = bt.add_ensemble(forecasts, ["a", "b"])
    assert out["ensemble"].tolist() == [2.0, 4.0] and out["ensemble-hi-95"].tolist() == [2.0, 4.0]
    weighted = bt.add_ensemble(forecasts, ["a", "b"], weights=[3, 1])
    assert weighted["ensemble"].tolist() == [1.5, 3.5]


def test_selection_ignores_the_evaluation_folds():
    c1, c2 = pd.Timestamp("2020-01-01"), pd.Timestamp("2020-02-01")
    scores = pd.DataFrame({"cutoff": [c1, c1, c2, c2], "model": ["a", "b", "a", "b"], "metric": "rmse",
                           "value": [1.0, 2.0, 9.0, 1.0]})
    best, members = bt.select(scores, [c1], ["a", "b"], n_members=1)
    assert best == "a" and members == ["a"]  # b wins on c2, which selection must not see
    assert bt.leaderboard(scores).index[0] == "b"
    with pytest.raises(ValueError, match="none of the candidates"):
        bt.select(scores, [c1], ["z"])


def test_roles_segments_and_diagnostics():
    frame = daily_series(n=120)
    cutoffs = bt.make_cutoffs(frame["ds"], 7, 4, 60)
    forecasts, _ = bt.backtest(frame, [_Spy()], 7, cutoffs)
    roles = bt.assign_roles(forecasts, 2)
    assert roles.groupby("role")["cutoff"].nunique().to_dict() == {"evaluation": 2, "selection": 2}
    with pytest.raises(ValueError, match="need selection and evaluation"):
        bt.assign_roles(forecasts, 4)
    segments = bt.segment_errors(forecasts, ["spy"], frame.set_index("ds")["workday"])
    assert set(segments["segment"]) == {"season", "day type"}
    white = pd.Series(np.random.default_rng(0).normal(size=300))
    assert (bt.ljung_box(white, [7, 14])["lb_pvalue"] > 0.05).all()
    curve = bt.learning_curve(frame, _Spy, 7, cutoffs[-1], [20, 40, 1000])
    assert curve["train_length"].tolist() == [20, 40]


def test_seasons_follow_the_hemisphere_and_default_to_quarters():
    ds = pd.Series(pd.to_datetime(["2014-01-15", "2014-04-15", "2014-07-15", "2014-10-15"]))
    assert bt.season_labels(ds, "south").tolist() == ["summer", "autumn", "winter", "spring"]
    assert bt.season_labels(ds, "north").tolist() == ["winter", "spring", "summer", "autumn"]
    assert bt.season_labels(ds, None).tolist() == ["Q1", "Q2", "Q3", "Q4"]
    with pytest.raises(ValueError, match="hemisphere must be one of"):
        bt.season_labels(ds, "east")
    # errors by segment: July is winter in the south and summer in the north
    forecasts = pd.DataFrame({"ds": pd.to_datetime(["2014-07-01", "2014-07-02", "2014-01-01"]), "y": [10.0, 10.0, 5.0],
                              "m": [13.0, 14.0, 5.0]})
    south = bt.segment_errors(forecasts, ["m"], hemisphere="south").set_index("value")["m"]
    north = bt.segment_errors(forecasts, ["m"], hemisphere="north").set_index("value")["m"]
    assert south["winter"] == pytest.approx(np.sqrt((9 + 16) / 2)) and south["summer"] == 0.0
    assert north["summer"] == pytest.approx(np.sqrt((9 + 16) / 2)) and north["winter"] == 0.0
