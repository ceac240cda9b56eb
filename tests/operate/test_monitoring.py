"""Monitoring: known answers for the metrics, simulations for drift, statuses at their thresholds."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy import stats

from helpers.data.ingest import ingest_file
from helpers.forecast.artifact import ArtifactError, write_artifact
from helpers.operate import monitoring as m
from helpers.warehouse import TABLE_COLUMNS
from tests.support import artifact_payload, half_hourly

T = m.Thresholds()  # env.yaml's values


def forecasts(rows: list[tuple], version: str = "v1", model: str = "m") -> pd.DataFrame:
    """A forecasts_with_actuals frame from (target_date, horizon_step, forecast, actual[, lo80, hi80, lo95, hi95])."""
    records = []
    for row in rows:
        day, step, forecast, actual, *bounds = row
        lo80, hi80, lo95, hi95 = bounds or (forecast - 1, forecast + 1, forecast - 2, forecast + 2)
        records.append({"prediction_id": f"{model}-{version}-{day}-{step}", "source": "scheduled", "series_id": "s",
                        "issued_at": pd.Timestamp(day) - pd.Timedelta(days=step), "model": model,
                        "model_version": version, "fitted_until": pd.Timestamp(day) - pd.Timedelta(days=step),
                        "target_date": pd.Timestamp(day), "horizon_step": step, "forecast": float(forecast),
                        "lower_80": lo80, "upper_80": hi80, "lower_95": lo95, "upper_95": hi95,
                        "y_mean": actual, "actual": actual})
    return pd.DataFrame(records, columns=[*TABLE_COLUMNS["forecast_log"], "y_mean", "actual"])


EMPTY_FORECASTS = forecasts([])


def intake(rows: list[dict]) -> pd.DataFrame:
    base = {"file_sha256": "x", "series_id": "s", "cycle_id": "c", "run_id": "r", "outcome": "good",
            "rows_read": 100, "rows_loaded": 100, "rows_quarantined": 0, "invalid_share": 0.0, "criticality": "low",
            "errors": "{}", "reason": None, "archived_as": "good/f", "bad_rows_file": None, "first_ts": pd.NaT,
            "last_ts": pd.NaT}
    frame = pd.DataFrame([{**base, **row} for row in rows], columns=[*base, "file_name", "processed_at"])
    frame["processed_at"] = pd.to_datetime(frame["processed_at"])
    return frame


EMPTY_INTAKE = intake([])


# -- accuracy and coverage: known answers --------------------------------------------------------------------
# Week of Mon 5 Jan 2015: errors (actual - forecast) 1, -2, 0, -4 on actuals 11, 10, 9, 16.
# Week of Mon 12 Jan: errors 3, -3 on actuals 30, 0 (MAPE leaves the 0 out); one day without actual.
KNOWN = forecasts([("2015-01-05", 1, 10, 11), ("2015-01-06", 2, 12, 10), ("2015-01-07", 1, 9, 9),
                   ("2015-01-08", 2, 20, 16), ("2015-01-12", 1, 27, 30), ("2015-01-13", 2, 3, 0),
                   ("2015-01-14", 1, 5, None)])


def test_error_over_time_matches_hand_computed_values():
    table = m.error_over_time(KNOWN).set_index("period")
    assert list(table.index) == [pd.Timestamp("2015-01-05"), pd.Timestamp("2015-01-12")]
    first, second = table.iloc[0], table.iloc[1]
    assert first["n"] == 4 and first["mae"] == pytest.approx(7 / 4) and first["bias"] == pytest.approx(-5 / 4)
    assert first["rmse"] == pytest.approx(math.sqrt((1 + 4 + 0 + 16) / 4))
    assert first["mape"] == pytest.approx(100 * (1 / 11 + 2 / 10 + 0 / 9 + 4 / 16) / 4)
    assert second["n"] == 2 and second["mae"] == 3 and second["rmse"] == 3 and second["bias"] == 0
    assert second["mape"] == pytest.approx(10.0)  # 3 / 30 only: a zero actual has no percentage error
    assert set(table["model_version"]) == {"v1"}


def test_error_over_time_keeps_model_versions_apart_and_takes_other_periods():
    both = pd.concat([KNOWN, forecasts([("2015-01-05", 1, 13, 11)], version="v2")], ignore_index=True)
    table = m.error_over_time(both, freq="D")
    day = table[table["period"] == pd.Timestamp("2015-01-05")].set_index("model_version")
    assert day.loc["v1", "mae"] == 1 and day.loc["v2", "mae"] == 2 and day.loc["v2", "bias"] == -2
    assert len(table) == 7  # six days with an actual in v1, one in v2


def test_error_by_horizon_matches_hand_computed_values():
    table = m.error_by_horizon(KNOWN).set_index("horizon_step")
    assert table.loc[1, "n"] == 3 and table.loc[1, "mae"] == pytest.approx((1 + 0 + 3) / 3)
    assert table.loc[2, "n"] == 3 and table.loc[2, "bias"] == pytest.approx((-2 - 4 - 3) / 3)
    assert table.loc[2, "rmse"] == pytest.approx(math.sqrt((4 + 16 + 9) / 3))


def test_coverage_is_exact_on_a_constructed_frame():
    # 80%: inside, on the lower bound, on the upper bound, below, above -> 3 of 5
    # 95%: the wider bounds hold all but the last -> 4 of 5; one row without bounds is not counted
    rows = [("2015-01-05", 1, 10, 10, 9, 11, 8, 12), ("2015-01-06", 1, 10, 9, 9, 11, 8, 12),
            ("2015-01-07", 1, 10, 11, 9, 11, 8, 12), ("2015-01-08", 1, 10, 7.5, 9, 11, 7, 12),
            ("2015-01-09", 1, 10, 13, 9, 11, 8, 12), ("2015-01-10", 1, 10, 10, None, None, None, None)]
    table = m.coverage_over_time(forecasts(rows)).set_index("level")
    assert table.loc[80, "n"] == 5 and table.loc[80, "covered"] == 3 and table.loc[80, "coverage"] == 0.6
    assert table.loc[95, "n"] == 5 and table.loc[95, "covered"] == 4 and table.loc[95, "coverage"] == 0.8
    assert list(table["nominal"]) == [0.8, 0.95]


def test_metrics_say_which_columns_are_missing():
    with pytest.raises(ValueError, match="actual"):
        m.error_over_time(KNOWN.drop(columns="actual"))


# -- the SQL join on both backends --------------------------------------------------------------------------
def test_forecasts_with_actuals_joins_the_daily_actual_on_the_forecast_scale(warehouse, spec, tmp_path):
    source = tmp_path / "two_days.csv"
    half_hourly(96, start="2015-01-01").to_csv(source, index=False)
    ingest_file(source, spec, warehouse)  # 2 days, half-hourly: daily mean 4 + 23.5 / 48
    assert m.forecasts_with_actuals(warehouse, "fixture").empty
    rows = forecasts([("2015-01-01", 1, 200.0, None), ("2015-01-02", 2, 210.0, None),
                      ("2015-01-03", 3, 220.0, None)])
    served = rows.iloc[[0]].assign(prediction_id="api-1", source="api",
                                   issued_at=pd.Timestamp("2015-01-01 09:00"))  # the same forecast, served later
    newer = rows.iloc[[1]].assign(prediction_id="v2-1", model_version="v2", forecast=215.0)
    logged = pd.concat([rows, served, newer], ignore_index=True).assign(series_id="fixture")
    warehouse.execute("create_log_stages")
    warehouse.load_frame("stage_forecast_log", logged[list(TABLE_COLUMNS["forecast_log"])])
    # The log's writer owns the publishing SQL; here the staged rows go in as they are.
    warehouse._run("INSERT INTO forecast_log SELECT * FROM stage_forecast_log", ())
    frame = m.forecasts_with_actuals(warehouse, "fixture")
    assert len(frame) == 4  # the forecast served twice counts once
    assert frame.loc[frame["prediction_id"] == "m-v1-2015-01-01-1", "source"].item() == "scheduled"
    daily_total = (4 + 23.5 / 48) * 48
    known = frame.dropna(subset=["actual"])
    assert list(known["target_date"].dt.day) == [1, 2, 2]
    assert known["actual"].to_numpy() == pytest.approx([daily_total] * 3)
    assert known["y_mean"].to_numpy() == pytest.approx([4 + 23.5 / 48] * 3)
    assert frame.loc[frame["target_date"] == "2015-01-03", "actual"].isna().all()  # not taken in yet
    assert m.error_by_horizon(frame).set_index("horizon_step").loc[2, "n"] == 2
    assert m.intake_files(warehouse, "fixture").empty


# -- drift: simulations -------------------------------------------------------------------------------------
def seasonal_days(seed: int, days: int = 577, noise: float = 2.0, phi: float = 0.0) -> pd.DataFrame:
    """Daily demand and temperature with a strong yearly cycle (winter in July) and noise, from 2013.

    Demand rises 20 units in winter, 3 on work days; the noise is AR(1) with coefficient ``phi``.
    577 days end on 31 July 2014: the latest window is mid-winter of the second year.
    """
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2013-01-01", periods=days, freq="D")
    winter = np.cos(2 * np.pi * (ts.dayofyear.to_numpy() - 196) / 365.25)  # 1 in mid-July, -1 in mid-January
    shocks = rng.normal(0, noise, (2, days))
    noise_paths = np.zeros_like(shocks)
    for t in range(days):
        noise_paths[:, t] = shocks[:, t] + (phi * noise_paths[:, t - 1] if t else 0)
    workday = (ts.dayofweek < 5).astype(int)
    return pd.DataFrame({"series_id": "s", "ts": ts, "y_mean": 100 + 20 * winter + 3 * workday + noise_paths[0],
                         "temperature_mean": 15 - 8 * winter + noise_paths[1], "workday": workday})


REFERENCE_END = pd.Timestamp("2013-12-31")


@pytest.mark.parametrize("seed", range(5))
def test_winter_is_not_drift(seed):
    daily = seasonal_days(seed)
    result = m.drift(daily, REFERENCE_END, 28)
    assert list(result.table["variable"]) == ["y_mean", "temperature_mean"] and result.table["judged"].all()
    assert [s.status for s in m.drift_signals(result, T)] == ["green", "green"]
    # The same window against the whole reference, season left in, would have been an alarm.
    window = daily[daily["ts"] > daily["ts"].max() - pd.Timedelta(days=28)]
    reference = daily[daily["ts"] <= REFERENCE_END]
    assert stats.ks_2samp(reference["y_mean"], window["y_mean"]).pvalue < 1e-6
    assert m.population_stability_index(reference["temperature_mean"], window["temperature_mean"], 5) > T.psi_red


@pytest.mark.parametrize("seed", range(5))
def test_a_level_shift_in_winter_is_red(seed):
    daily = seasonal_days(seed)
    shifted = daily["ts"] > daily["ts"].max() - pd.Timedelta(days=28)
    daily.loc[shifted, "y_mean"] += 2 * 2.0  # two noise standard deviations
    daily.loc[shifted, "temperature_mean"] -= 2 * 2.0
    result = m.drift(daily, REFERENCE_END, 28)
    signals = m.drift_signals(result, T)
    assert [s.status for s in signals] == ["red", "red"]
    assert "y_mean has drifted" in signals[0].message and "ran +" in signals[0].message
    assert "sensor" in signals[1].message and "ran -" in signals[1].message
    assert result.table["shift_sd"].abs().between(1.4, 2.8).all()


def test_autocorrelated_noise_is_not_drift_though_a_test_for_independent_values_says_so():
    naive, ours = 0, 0
    for seed in range(20):
        daily = seasonal_days(seed, phi=0.8)
        result = m.drift(daily, REFERENCE_END, 28, columns=("temperature_mean",))
        row = result.table.iloc[0]
        naive += stats.kstwobign.sf(row["ks_statistic"] * math.sqrt(28 * 365 / (28 + 365))) < T.ks_alpha
        ours += m.drift_signals(result, T)[0].alerting
        assert row["autocorrelation"] == pytest.approx(0.8, abs=0.1)
    assert naive >= 5 and ours <= 1


def test_drift_reference_stops_before_the_window_and_profile_reads_as_used():
    daily = seasonal_days(0)
    result = m.drift(daily, "2014-07-20", 28)
    row = result.table.iloc[0]
    assert row["reference_end"] == pd.Timestamp("2014-07-03") and row["window_start"] == pd.Timestamp("2014-07-04")
    assert row["n_reference"] == 549 and row["n_window"] == 28
    assert row["profile"] == "yearly (3 harmonics), weekday, work day, degree-days"
    assert "inside the latest window" in result.notes[0]
    assert result.table.iloc[1]["profile"] == "yearly (3 harmonics), weekday, work day"
    values = result.values[result.values["variable"] == "y_mean"]
    assert (values["part"] == "window").sum() == 28
    assert values["residual"].to_numpy() == pytest.approx((values["value"] - values["profile"]).to_numpy())


def test_drift_is_not_judged_where_the_reference_has_not_seen_the_season():
    daily = seasonal_days(0, days=200)  # January to mid-July 2013: the window's winter was never seen
    result = m.drift(daily, None, 28)
    assert not result.table["judged"].any()
    signals = m.drift_signals(result, T)
    assert [s.status for s in signals] == ["grey", "grey"] and "time of year" in signals[0].message
    # A reference of a year less a month is enough: the window lies between seen days.
    assert m.drift(seasonal_days(0, days=365), None, 28).table["judged"].all()


def test_drift_skips_absent_covariates_and_short_data_with_a_note():
    daily = seasonal_days(0).drop(columns=["temperature_mean", "workday"])
    result = m.drift(daily, REFERENCE_END, 28)
    assert list(result.table["variable"]) == ["y_mean"] and "temperature_mean" in result.notes[0]
    assert result.table.iloc[0]["profile"] == "yearly (3 harmonics), weekday"
    short = m.drift(seasonal_days(0, days=40), None, 28)
    assert not short.table["judged"].any() and "too little data" in short.table.iloc[0]["reason"]
    assert m.drift_signals(short, T)[0].status == "grey"
    assert m.plot_deseasonalised(short).layout.annotations[0].text == "No variable judged for drift"


# -- PSI: known answers -------------------------------------------------------------------------------------
def test_population_stability_index_known_answers():
    expected = np.arange(1, 11)  # two bins split at 5.5: shares 0.5, 0.5
    assert m.population_stability_index(expected, [1, 2, 6, 7, 8, 9, 10, 10], bins=2) == pytest.approx(
        0.25 * math.log(0.5 / 0.25) + 0.25 * math.log(0.75 / 0.5))  # = 0.25 ln 3
    assert m.population_stability_index(expected, expected, bins=5) == 0
    floor = m.PSI_FLOOR  # every actual value above the split: the empty bin's share is floored
    assert m.population_stability_index(expected, [8, 9], bins=2) == pytest.approx(
        (floor - 0.5) * math.log(floor / 0.5) + 0.5 * math.log(1 / 0.5))
    with pytest.raises(ValueError, match="both samples"):
        m.population_stability_index([], [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        m.population_stability_index([1.0, 2.0], [1.0], bins=1)


# -- statuses at their thresholds ---------------------------------------------------------------------------
def test_grade_counts_a_threshold_from_its_value_on():
    assert [m.grade(v, 1.25, 1.75) for v in (1.2499, 1.25, 1.7499, 1.75, 9)] == ["green", "orange", "orange",
                                                                                 "red", "red"]


def window_of(maes: list[float], days: int = 28) -> pd.DataFrame:
    """``days`` forecasts whose absolute errors cycle through ``maes``; 95% bounds +-2."""
    start = pd.Timestamp("2015-02-01")
    return forecasts([(start + pd.Timedelta(days=i), 1, 100.0, 100.0 + maes[i % len(maes)]) for i in range(days)])


@pytest.mark.parametrize(("error", "status"), [(2.49, "green"), (2.5, "orange"), (3.49, "orange"), (3.5, "red")])
def test_accuracy_status_at_the_thresholds(error, status):
    reference = m.ModelReference(cv_mae={"m": 2.0}, source="artifact")
    (signal,) = m.accuracy_signals(window_of([error]), reference, T)
    assert signal.key == "accuracy:m" and signal.status == status and signal.value == pytest.approx(error / 2)
    assert ("too low" in signal.message) == (status != "green")


def test_accuracy_counts_the_window_and_the_cross_validated_horizon_only():
    old = forecasts([("2014-12-01", 1, 100.0, 200.0)])  # long before the window: not counted
    far = forecasts([("2015-02-10", 20, 100.0, 200.0)])  # beyond the 14 days cross-validated
    frame = pd.concat([old, far, window_of([1.0])], ignore_index=True)
    (signal,) = m.accuracy_signals(frame, m.ModelReference(cv_mae={"m": 1.0}, cv_horizon=14), T)
    assert signal.status == "green" and signal.value == 1.0 and "28 forecasts" in signal.message
    (beyond,) = m.accuracy_signals(far, m.ModelReference(cv_mae={"m": 1.0}, cv_horizon=14), T)
    assert beyond.status == "grey" and "14 days ahead" in beyond.message
    (unknown,) = m.accuracy_signals(frame, m.ModelReference(cv_mae={"other": 1.0}, source="a.json"), T)
    assert unknown.status == "grey" and "a.json has no cross-validated error for m" in unknown.message


@pytest.mark.parametrize(("inside", "status"), [(18, "green"), (17, "orange"), (16, "orange"), (15, "red")])
def test_coverage_status_at_the_thresholds(inside, status):
    # 20 days, 95% bounds 98..102: ``inside`` of them within. 17/20 = 0.85 is exactly 10 points short.
    start = pd.Timestamp("2015-02-01")
    rows = [(start + pd.Timedelta(days=i), 1, 100.0, 101.0 if i < inside else 110.0, 99, 101, 98, 102)
            for i in range(20)]
    signals = {s.key: s for s in m.coverage_signals(forecasts(rows), T)}
    assert signals["coverage_95:m"].status == status and signals["coverage_95:m"].value == inside / 20
    assert signals["coverage_80:m"].value == inside / 20


def test_wide_intervals_are_said_not_alerted_and_missing_bounds_are_grey():
    rows = [(pd.Timestamp("2015-02-01") + pd.Timedelta(days=i), 1, 100.0, 100.0, 90, 110, None, None)
            for i in range(10)]
    signals = {s.key: s for s in m.coverage_signals(forecasts(rows), T)}
    assert signals["coverage_80:m"].status == "green" and "wider than they need be" in signals["coverage_80:m"].message
    assert signals["coverage_95:m"].status == "grey" and "without 95% intervals" in signals["coverage_95:m"].message


def drift_table(psi: float, p: float, judged: bool = True) -> m.DriftResult:
    row = {c: None for c in m.DRIFT_TABLE_COLUMNS}
    row.update(variable="temperature_mean", judged=judged, reason="" if judged else "why", psi=psi, ks_pvalue=p,
               psi_by_chance=0.15, shift_sd=1.0)
    return m.DriftResult(pd.DataFrame([row]), pd.DataFrame(columns=m.DRIFT_VALUE_COLUMNS))


@pytest.mark.parametrize(("psi", "p", "status"), [(0.0999, 0.001, "green"), (0.10, 0.001, "orange"),
                                                  (0.25, 0.001, "red"), (2.0, 0.0101, "green")])
def test_drift_status_needs_a_test_beyond_chance_and_a_psi_that_matters(psi, p, status):
    (signal,) = m.drift_signals(drift_table(psi, p), T)
    assert signal.key == "drift:temperature_mean" and signal.status == status and signal.value == psi
    if psi >= T.psi_orange and status == "green":
        assert "about what a 28-day window shows by chance (0.15)" in signal.message
    if psi < T.psi_orange:
        assert "too small to matter" in signal.message


@pytest.mark.parametrize(("bad_rows", "status"), [(0, "green"), (0.99, "green"), (1, "orange"), (4.99, "orange"),
                                                  (5, "red")])
def test_invalid_share_status_at_the_thresholds(bad_rows, status):
    files = intake([{"file_name": "a.csv", "processed_at": "2015-02-01", "rows_read": 50, "invalid_share": 0.0},
                    {"file_name": "b.csv", "processed_at": "2015-02-02", "rows_read": 50,
                     "invalid_share": bad_rows / 50, "errors": json.dumps({"out_of_range": bad_rows})}])
    signal = m.data_quality_signals(files, T)[0]
    assert signal.key == "data_quality:invalid_share" and signal.status == status
    assert signal.value == pytest.approx(bad_rows / 100)
    assert ("mostly out_of_range" in signal.message) == (status != "green")


def test_criticality_signal_takes_the_worst_file_of_the_window():
    files = intake([{"file_name": "old.csv", "processed_at": "2015-01-01", "criticality": "high"},
                    {"file_name": "a.csv", "processed_at": "2015-02-20", "criticality": "medium"},
                    {"file_name": "b.csv", "processed_at": "2015-02-21"}])
    criticality = m.data_quality_signals(files, T)[1]
    assert criticality.status == "orange" and "1 inbox file of the last 28 days was of medium" in criticality.message
    files.loc[1, "criticality"] = "high"
    assert m.data_quality_signals(files, T)[1].status == "red"
    assert m.data_quality_signals(files.iloc[[2]], T)[1].status == "green"


def test_thresholds_come_from_the_settings(clean_env):
    from helpers.core.settings import load_settings

    assert m.Thresholds.from_settings(load_settings(monitor_psi_red=0.5)) == m.Thresholds(psi_red=0.5)


# -- data quality over time ---------------------------------------------------------------------------------
def test_data_quality_over_time_aggregates_the_files_of_each_period():
    files = intake([
        {"file_name": "a.csv", "processed_at": "2015-01-05 08:00", "rows_read": 100, "rows_loaded": 98,
         "rows_quarantined": 2, "invalid_share": 0.02, "outcome": "mixed", "criticality": "medium",
         "errors": json.dumps({"out_of_range": 2, "missing_value": 1})},
        {"file_name": "b.csv", "processed_at": "2015-01-07 08:00", "rows_read": 50, "rows_loaded": 0,
         "rows_quarantined": 0, "invalid_share": 1.0, "outcome": "bad", "criticality": "high",
         "errors": json.dumps({"missing_column": 50, "schema": 1}), "reason": "no timestamp column"},
        {"file_name": "c.csv", "processed_at": "2015-01-13 08:00"},
        {"file_name": "d.bin", "processed_at": "2015-01-20 08:00", "rows_read": 0, "rows_loaded": 0,
         "invalid_share": 1.0, "outcome": "bad", "criticality": "high", "errors": ""},
    ])
    table = m.data_quality_over_time(files).set_index("period")
    first, second, third = (table.loc[pd.Timestamp(day)] for day in ("2015-01-05", "2015-01-12", "2015-01-19"))
    assert first["files"] == 2 and first["outcome_mixed"] == 1 and first["outcome_bad"] == 1
    assert first["criticality_medium"] == 1 and first["criticality_high"] == 1 and first["criticality_low"] == 0
    assert first["rows_read"] == 150 and first["invalid_rows"] == 52
    assert first["invalid_share"] == pytest.approx(52 / 150)
    assert first["errors_missing_value"] == 1 and first["errors_out_of_range"] == 2
    assert first["errors_missing_column"] == 50 and first["errors_schema"] == 1
    assert [c for c in table.columns if c.startswith("errors_")] == [
        "errors_missing_value", "errors_out_of_range", "errors_missing_column", "errors_schema"]
    assert second["invalid_share"] == 0 and second["outcome_good"] == 1
    assert third["invalid_share"] == 1.0  # no row could be read: the file's own share


# -- empty inputs -------------------------------------------------------------------------------------------
def test_no_data_yet_gives_empty_tables_grey_signals_and_sentences(tmp_path):
    reference = m.load_reference(tmp_path / "missing.json")
    assert reference.cv_mae == {} and "make run" in reference.note
    nothing = m.drift(pd.DataFrame(columns=["ts", "y_mean", "temperature_mean", "workday"]), None, 28)
    assert nothing.table.empty and "no daily data" in nothing.notes[-1]
    assert m.error_over_time(EMPTY_FORECASTS).empty and list(m.error_by_horizon(EMPTY_FORECASTS).columns) == [
        "model", "horizon_step", *m.ERROR_COLUMNS]
    assert m.coverage_over_time(EMPTY_FORECASTS).empty and m.data_quality_over_time(EMPTY_INTAKE).empty
    signals = m.statuses(EMPTY_FORECASTS, reference, nothing, EMPTY_INTAKE, T)
    assert {s.status for s in signals} == {"grey"} and not any(s.alerting for s in signals)
    assert [s.key for s in signals] == ["accuracy", "coverage_80", "coverage_95", "drift",
                                        "data_quality:invalid_share", "data_quality:criticality"]
    assert all(s.message.endswith(".") for s in signals)
    assert "No signal needs attention" in m.summary(signals) and "`accuracy`" in m.summary(signals)
    text = m.describe_inputs(EMPTY_FORECASTS, EMPTY_INTAKE, nothing, reference)
    assert "no forecast" in text and "No inbox file" in text and "make run" in text


def test_a_corrupt_artifact_is_an_error_not_missing_data(tmp_path):
    path = tmp_path / "artifact.json"
    path.write_text("{")
    with pytest.raises(ArtifactError, match="corrupt"):
        m.load_reference(path)


def test_reference_reads_the_artifact(tmp_path):
    payload = artifact_payload(models=("a", "b"))
    payload["parameters"] = {"comparison": {"horizon": 14}}
    reference = m.load_reference(write_artifact(tmp_path / "artifact.json", payload))
    assert reference.cv_mae == {"a": 8.0, "b": 9.0} and reference.cv_horizon == 14
    assert reference.training_end == pd.Timestamp("2014-12-31") and reference.selected_model == "a"


# -- the report: a whole picture, and every figure ----------------------------------------------------------
def busy_month() -> tuple[pd.DataFrame, pd.DataFrame, m.DriftResult, m.ModelReference]:
    """Two model versions over six weeks, one of them far off; files of every kind; a drifted window."""
    start = pd.Timestamp("2015-01-05")
    good = [(start + pd.Timedelta(days=i), 1 + i % 3, 100.0, 100.0 + (i % 3 - 1)) for i in range(42)]
    poor = [(start + pd.Timedelta(days=i), 1, 100.0, 106.0) for i in range(28, 42)]
    frame = pd.concat([forecasts(good, "v1"), forecasts(poor, "v2", model="m2")], ignore_index=True)
    frame.loc[len(frame)] = {**frame.iloc[-1].to_dict(), "target_date": start + pd.Timedelta(days=43),
                             "actual": np.nan, "prediction_id": "pending"}
    files = intake([{"file_name": f"f{i}.csv", "processed_at": start + pd.Timedelta(days=7 * i),
                     "rows_read": 48, "rows_loaded": 48 - i, "rows_quarantined": i, "invalid_share": i / 48,
                     "outcome": "mixed" if i else "good", "criticality": ["low", "medium", "high"][min(i, 2)],
                     "errors": json.dumps({"out_of_range": i})} for i in range(6)])
    daily = seasonal_days(1)
    daily.loc[daily["ts"] > daily["ts"].max() - pd.Timedelta(days=28), "y_mean"] += 8
    reference = m.ModelReference(cv_mae={"m": 1.0, "m2": 2.0}, cv_horizon=14, training_end=REFERENCE_END,
                                 selected_model="m", source="artifact.json")
    return frame, files, m.drift(daily, REFERENCE_END, 28), reference


def test_statuses_of_a_busy_month_read_for_the_person_on_call():
    frame, files, drifted, reference = busy_month()
    signals = m.statuses(frame, reference, drifted, files, T)
    by_key = {s.key: s for s in signals}
    assert by_key["accuracy:m"].status == "green" and by_key["accuracy:m2"].status == "red"
    assert by_key["coverage_95:m2"].status == "red" and by_key["drift:y_mean"].status == "red"
    assert by_key["drift:temperature_mean"].status == "green"
    assert by_key["data_quality:invalid_share"].status == "red"  # 4 + 5 of 96 rows in the window's files
    assert by_key["data_quality:criticality"].status == "red"
    table = m.status_table(signals)
    assert list(table.columns) == ["signal", "status", "value", "threshold", "message"]
    assert list(table["status"]) == sorted(table["status"], key=["red", "orange", "green", "grey"].index)
    html = m.styled_status_table(signals).to_html()
    assert "#ffcdd2" in html and "accuracy:m2" in html
    assert m.summary(signals).startswith("**6 of 10 signals") and "need attention" in m.summary(signals)
    text = m.describe_inputs(frame, files, drifted, reference)
    assert "by 2 model versions" in text and "6 inbox files were taken in" in text and "2013-12-31" in text


def figures(frame, files, drifted) -> list[go.Figure]:
    dq = m.data_quality_over_time(files)
    return [m.plot_error_over_time(m.error_over_time(frame)), m.plot_error_by_horizon(m.error_by_horizon(frame)),
            m.plot_coverage_over_time(m.coverage_over_time(frame), T), m.plot_forecast_vs_actual(frame),
            m.plot_drift_psi(drifted, T), m.plot_drift_ecdf(drifted), m.plot_deseasonalised(drifted),
            m.plot_seasonal_profile(drifted),
            m.plot_invalid_share(dq, T), m.plot_rows(dq), m.plot_errors_by_kind(dq), m.plot_criticality(dq),
            m.plot_files(files, T)]


def axis_titles(fig: go.Figure, axis: str) -> list[str]:
    layout = fig.layout.to_plotly_json()
    return [v["title"]["text"] for k, v in layout.items()
            if k.startswith(f"{axis}axis") and v.get("title", {}).get("text")]


def test_every_figure_has_a_title_and_axis_labels_with_data_and_without():
    frame, files, drifted, _ = busy_month()
    nothing = m.drift(pd.DataFrame(columns=["ts", "y_mean"]), None, 28)
    for data in ((frame, files, drifted), (EMPTY_FORECASTS, EMPTY_INTAKE, nothing)):
        for fig in figures(*data):
            assert isinstance(fig, go.Figure) and fig.layout.title.text
            assert axis_titles(fig, "x") and axis_titles(fig, "y"), fig.layout.title.text
    full = figures(frame, files, drifted)
    assert len(full[3].data) == 6 and full[3].data[-1].name == "actual"  # bands, forecast and actual
    assert full[3].data[-2].name == "forecast (m2)"  # the model of the latest forecast issued
    assert len(full[3].data[-1].x) == 15 and pd.isna(full[3].data[-1].y[-1])  # the pending day is shown
    assert len(m.plot_forecast_vs_actual(frame, days=7, model="m").data[-1].x) == 7
    assert [bar.name for bar in full[11].data] == ["low", "medium", "high"]
    empty = figures(EMPTY_FORECASTS, EMPTY_INTAKE, nothing)
    assert empty[0].layout.annotations[0].text == m.NO_ACTUALS and empty[8].layout.annotations[0].text == m.NO_FILES
    clean = m.data_quality_over_time(files.assign(errors="{}"))
    assert m.plot_errors_by_kind(clean).layout.annotations[0].text == "No error in any file"


def test_figures_draw_the_latest_versions_and_the_drift_summary_reads_for_people(clean_env):
    from helpers.core.settings import load_settings

    start = pd.Timestamp("2015-01-05")
    many = pd.concat([forecasts([(start + pd.Timedelta(days=7 * v + i), 1, 100.0, 101.0) for i in range(7)],
                                version=f"v{v:02d}") for v in range(10)], ignore_index=True)
    fig = m.plot_error_over_time(m.error_over_time(many), max_versions=3)
    assert "(the latest 3 of 10 versions)" in fig.layout.title.text
    assert {t.name for t in fig.data} == {"m @ v07", "m @ v08", "m @ v09"}
    assert "latest 8 of 10" in m.plot_coverage_over_time(m.coverage_over_time(many)).layout.title.text
    summary = m.drift_summary(m.drift(seasonal_days(0), REFERENCE_END, 28))
    assert list(summary["reference"]) == ["2013-01-01 to 2013-12-31 (365 days)"] * 2
    assert summary["window"].iloc[0] == "2014-07-04 to 2014-07-31 (28 days)"
    assert summary["PSI"].iloc[0] == float(f"{summary['PSI'].iloc[0]:.3g}")
    assert m.drift_summary(m.drift(pd.DataFrame(columns=["ts"]), None, 28)).empty
    assert m.default_artifact(load_settings()).parts[-2:] == ("model", "forecast_artifact.json")


def test_subplot_figures_are_laid_out_as_make_subplots_lays_them_out():
    frame, _, drifted, _ = busy_month()
    errors = m.plot_error_over_time(m.error_over_time(frame)).layout
    assert [errors[f"xaxis{k}"].matches for k in ("", 2, 3, 4)] == ["x4", "x4", "x4", None]  # shared x
    assert errors.yaxis.domain == (0.7875, 1.0) and errors.yaxis4.domain == (0.0, 0.2125)  # row 1 on top
    assert errors.shapes[0].yref == "y4" and errors.shapes[0].xref == "x4 domain"  # zero under the bias
    coverage = m.plot_coverage_over_time(m.coverage_over_time(frame), T).layout
    assert coverage.yaxis2.matches == "y" and coverage.xaxis2.domain == (0.55, 1.0)
    assert [a.text for a in coverage.annotations] == ["80% intervals", "95% intervals"]
    levels = [(s.yref, round(s.y0, 9)) for s in coverage.shapes]  # each level, and its orange line below
    assert levels == [("y", 0.8), ("y", 0.7), ("y2", 0.95), ("y2", 0.85)]
    profile = m.plot_seasonal_profile(drifted)
    assert [t.yaxis for t in profile.data] == ["y"] * 4 + ["y2"] * 4
    assert [(s.type, s.xref, s.yref) for s in profile.layout.shapes] == [("rect", "x", "y domain"),
                                                                      ("rect", "x2", "y2 domain")]
