"""The model comparison: backtest, choice, calibration, coverage, the artifact's models, the report's words."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from helpers.forecast import artifact, calibration
from helpers.forecast import comparison as cmp
from tests.support import artifact_payload, daily_series


@pytest.mark.slow
def test_comparison_end_to_end_on_a_seasonal_series(tmp_path):
    frame = daily_series(n=160, season=10, noise=1.0).assign(temperature=lambda d: d["degree_days"] + 18)
    frame = frame.drop(columns="degree_days").assign(filled=False)
    config = cmp.ComparisonConfig.parse("daily", 7, 6, 80, "naive,seasonal_naive,ses,arimax_temperature", 14)
    comparison = cmp.run_comparison(cmp.prepare_frame(frame), config)
    assert comparison.selected == "seasonal_naive" and comparison.conditional == ["arimax_temperature"]
    assert "arimax_temperature" not in comparison.candidates  # never chosen for production
    board = comparison.leaderboard()
    assert board.loc["arimax_temperature", "kind"].startswith("conditional")
    summary = cmp.accuracy_summary(comparison).set_index("what")
    assert summary["ratio to seasonal naive"].iloc[0] == pytest.approx(1.0)
    record = cmp.selection_record(comparison)
    calibrations = calibration.from_record(json.loads(json.dumps(record))["calibration"])
    assert calibrations == comparison.calibrations
    models = cmp.artifact_models(cmp.prepare_frame(frame), config, record["selected"], record["members"],
                                 record["metrics"], calibrations)
    assert set(models) == {*comparison.members, "ensemble"} and len(models["ensemble"]["forecast"]["ds"]) == 14
    # The served band is the model's own band rescaled about the mean by the served factor (1: its own).
    (raw,) = cmp.forecast_paths(cmp.prepare_frame(frame), config, [comparison.selected]).values()
    served = pd.DataFrame(models[comparison.selected]["forecast"])
    for lv in (80, 95):
        factor = comparison.calibrations[comparison.selected][lv].factor
        assert models[comparison.selected]["calibration"][str(lv)]["factor"] == factor
        assert (served[f"hi-{lv}"] - served["mean"]).to_numpy() == pytest.approx(
            factor * (raw[f"hi-{lv}"] - raw["mean"]).to_numpy())
    with pytest.raises(ValueError, match="no interval calibration for"):
        cmp.artifact_models(cmp.prepare_frame(frame), config, record["selected"], record["members"],
                            record["metrics"], {})
    assert pd.Timestamp(models["ensemble"]["forecast"]["ds"][0]) == frame["ds"].iloc[-1] + pd.Timedelta("1D")
    payload = artifact_payload()
    payload.update(models=models, selected_model=comparison.selected,
                   interval_calibration=cmp.calibration_metadata(record))
    artifact.write_artifact(tmp_path / "a.json", payload)
    # Coverage: the served intervals' in the leaderboard, all three in the table by model and level.
    assert {"served coverage_80", "served coverage_95"} <= set(board.columns)
    assert not {"raw_coverage_80", "calibrated_coverage_80"} & set(board.columns)
    coverage = cmp.interval_coverage(comparison)
    assert list(coverage.columns) == ["raw", "calibrated", "served", "served now", "factor"]
    assert len(coverage) == 2 * len(board)
    assert coverage.index.get_level_values("nominal").unique().tolist() == [0.8, 0.95]
    evaluation = comparison.forecasts[comparison.forecasts["role"] == "evaluation"]
    inside = evaluation["y"].between(evaluation["ses-lo-80"], evaluation["ses-hi-80"]).mean()
    assert coverage.loc[("ses", 0.8), "served"] == pytest.approx(inside)
    assert board.loc["ses", "served coverage_80"] == pytest.approx(inside)
    assert record["metrics"]["ses"]["coverage_80"] == pytest.approx(inside)
    assert cmp.fold_table(comparison)["role"].value_counts().to_dict() == {"selection": 3, "evaluation": 3}
    # per fold, for the tracking store: every model's metrics, earliest cutoff first; the pooled MAE is their mean
    folds = record["folds"]
    assert [f["fold"] for f in folds] == list(range(1, 7)) and [f["role"] for f in folds] == ["selection"] * 3 + [
        "evaluation"] * 3
    assert [pd.Timestamp(f["cutoff"]) for f in folds] == sorted(comparison.forecasts["cutoff"].unique())
    assert set(folds[0]["metrics"]) == set(board.index)
    assert np.mean([f["metrics"]["ses"]["mae"] for f in folds[3:]]) == pytest.approx(record["metrics"]["ses"]["mae"])
    assert len(cmp.backtest_residuals(comparison, "ses")) == 6 * 7
    assert not cmp.seasonal_errors(comparison, frame.set_index("ds")["workday"]).empty
    selection = cmp.write_selection(comparison, tmp_path / "selection.json")
    config_back, record_back = cmp.read_selection(selection)
    assert config_back == replace(config, min_train=80) and record_back["selected"] == "seasonal_naive"
    text = cmp.justification(comparison)
    assert "not** 10% better" in text
    off = any(abs(board.loc["seasonal_naive", f"served coverage_{lv}"] - lv / 100) > 0.05 for lv in (80, 95))
    assert ("do not cover what they claim" in text) == off
    assert len(cmp.in_sample_residuals(cmp.prepare_frame(frame), config, "ses")) > 100
    assert len(cmp.plot_last_fold(comparison).data) == 4 * len(comparison.leaderboard())
    assert len(cmp.plot_error_distributions(comparison).data) == len(comparison.leaderboard())


def test_config_and_frame_checks():
    with pytest.raises(ValueError, match="grain must be"):
        cmp.ComparisonConfig.parse("weekly", 7, 6, 80, "naive", 14)
    with pytest.raises(ValueError, match="at least 2"):
        cmp.ComparisonConfig.parse("daily", 7, 1, 80, "naive", 14)
    frame = pd.DataFrame({"ds": pd.date_range("2020-01-01", periods=3), "y": [1.0, None, 2.0], "temperature": 1.0})
    with pytest.raises(ValueError, match="still missing"):
        cmp.prepare_frame(frame)


def test_calendar_models_run_only_with_a_holiday_calendar_and_the_report_says_how_to_enable_them():
    frame = cmp.prepare_frame(daily_series(n=120).assign(temperature=20.0, filled=False))
    names = "seasonal_naive,ets_calendar"
    without = cmp.run_comparison(frame, cmp.ComparisonConfig.parse("daily", 7, 4, 60, names, 14))
    assert without.calendar == [] and without.candidates == ["seasonal_naive"]
    assert "ets_calendar" not in without.forecasts
    (note,) = without.notes
    assert note.startswith("ets_calendar left out") and "HELPERS_HOLIDAY_COUNTRY" in note
    config = cmp.ComparisonConfig.parse("daily", 7, 4, 60, names, 14, "AU", "VIC")
    comparison = cmp.run_comparison(frame, config)
    assert comparison.candidates == ["seasonal_naive", "ets_calendar"]
    assert comparison.leaderboard().loc["ets_calendar", "kind"] == "calendar (work days)"
    # The artifact's future work days come from the calendar: Good Friday 2020 is 10 April.
    short = frame[frame["ds"] <= "2020-04-05"]
    paths = cmp.forecast_paths(short, config, ["ets_calendar"])
    assert len(paths["ets_calendar"]) == 14
    future = config.with_calendar(paths["ets_calendar"][["ds"]])
    assert future.set_index("ds").loc["2020-04-10", "workday"] == 0.0
    assert len(cmp.in_sample_residuals(frame, config, "ets_calendar")) > 100


def test_a_min_train_longer_than_half_the_series_is_changed_and_reported():
    frame = cmp.prepare_frame(daily_series(n=120).assign(temperature=20.0, filled=False))
    comparison = cmp.run_comparison(frame, cmp.ComparisonConfig.parse("daily", 7, 4, 100, "naive,seasonal_naive", 14))
    assert comparison.config.min_train == 60 and min(comparison.forecasts["cutoff"]) == frame["ds"].iloc[59]
    (note,) = comparison.notes
    assert "daily_min_train is 100 steps" in note and "HELPERS_DAILY_MIN_TRAIN" in note and "at most 60" in note
    fits = cmp.run_comparison(frame, cmp.ComparisonConfig.parse("daily", 7, 4, 60, "naive,seasonal_naive", 14))
    assert fits.notes == []


def test_calibration_learnt_on_calm_folds_is_called_out_when_later_errors_are_larger():
    """Exchangeability broken on purpose: noise six times larger after the selection folds."""
    frame = daily_series(n=160, season=10, noise=1.0, seed=4).assign(temperature=20.0, filled=False)
    late = frame.index > 121  # after the first evaluation cutoff (the 5th of 8 from day 79 to 152)
    frame.loc[late, "y"] += np.random.default_rng(5).normal(0, 6.0, late.sum())
    config = cmp.ComparisonConfig.parse("daily", 7, 8, 80, "naive,seasonal_naive", 14)
    comparison = cmp.run_comparison(cmp.prepare_frame(frame), config)
    assert comparison.evaluation_cutoffs[0] == frame["ds"].iloc[121]
    coverage = cmp.interval_coverage(comparison).loc[comparison.selected]
    assert (coverage["calibrated"] < coverage.index - 0.05).all()
    assert "do not cover what they claim" in cmp.justification(comparison)


def test_min_length_is_the_shortest_series_the_comparison_runs_on():
    config = cmp.ComparisonConfig.parse("daily", 14, 4, 150, "naive,seasonal_naive", 14)
    assert config.min_length() == 33  # 4 cutoffs from step 16 (half the series) to 14 steps before its end
    frame = cmp.prepare_frame(daily_series(n=33).assign(temperature=np.nan, filled=False))
    comparison = cmp.run_comparison(frame, config)
    assert len(comparison.selection_cutoffs) == 2 and len(comparison.evaluation_cutoffs) == 2
    with pytest.raises(ValueError) as info:
        cmp.run_comparison(frame.iloc[:32], config)
    assert str(info.value) == (
        "the daily model comparison needs at least 33 values (4 folds of 14 steps ahead after at least 14 steps of "
        "training; for a shorter series lower daily_folds or daily_horizon), the series has 32; load a longer series")


@pytest.mark.parametrize("n", [1, 3])
def test_a_few_rows_are_refused_naming_the_minimum(n):
    """A 3-row file failed with "1 points cannot hold 4 folds of horizon 14 after 0 training points"."""
    config = cmp.ComparisonConfig.parse("hourly", 48, 2, 1440, "naive,seasonal_naive", 28 * 24)
    frame = cmp.prepare_frame(daily_series(n=n).assign(temperature=np.nan, filled=False))
    with pytest.raises(ValueError, match=f"^the hourly model comparison needs at least 672 values .*"
                                                       f"the series has {n}; load a longer series$"):
        cmp.run_comparison(frame, config)


def test_a_constant_series_is_refused():
    """Every model forecast it exactly; the report's RMSE ratio to seasonal naive divided by zero."""
    frame = cmp.prepare_frame(daily_series(n=60).assign(y=4.0, temperature=np.nan, filled=False))
    config = cmp.ComparisonConfig.parse("daily", 7, 4, 20, "naive,seasonal_naive", 14)
    with pytest.raises(ValueError) as info:
        cmp.run_comparison(frame, config)
    assert str(info.value) == ("the daily series is 4 at every step: every model forecasts it exactly, so the model "
                               "comparison has nothing to compare; load a series that varies")
