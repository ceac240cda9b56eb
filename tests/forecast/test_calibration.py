"""Conformal interval calibration: hand-computed answers, a simulation, and the guards."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from helpers.forecast import calibration as cal

# Five points around a forecast of 10 with an asymmetric interval [8, 14] (half-widths 2 and 4).
Y = [9.0, 12.0, 6.0, 16.0, 10.0]
# Scores by hand, max((10 - y) / 2, (y - 10) / 4): 0.5, 0.5, 2.0, 1.5, 0.0
SCORES = [0.5, 0.5, 2.0, 1.5, 0.0]


def test_scores_equal_hand_computed_values():
    assert cal.conformity_scores(Y, [10.0] * 5, [8.0] * 5, [14.0] * 5) == pytest.approx(SCORES)


@pytest.mark.parametrize("n, level, rank", [
    (5, 50, 3), (5, 80, 5), (5, 95, 6), (19, 95, 19), (18, 95, 19), (3, 80, 4), (4, 80, 4), (70, 80, 57),
    (70, 95, 68), (28, 95, 28),
])
def test_rank_is_the_finite_sample_conformal_rank(n, level, rank):
    assert cal.conformal_rank(n, level) == rank


def test_quantile_and_calibrated_interval_on_the_tiny_example():
    # level 50: k = ceil(6 * 0.5) = 3, the third smallest of 0, 0.5, 0.5, 1.5, 2 is 0.5
    fitted = cal.fit_calibration(Y, [10.0] * 5, [8.0] * 5, [14.0] * 5, 50)
    assert (fitted.method, fitted.factor, fitted.n, fitted.rank, fitted.finite_sample) == ("scaled", 0.5, 5, 3, True)
    lo, hi = cal.calibrate_interval([10.0], [8.0], [14.0], fitted)
    assert (lo[0], hi[0]) == (9.0, 12.0)  # 10 - 0.5 * 2, 10 + 0.5 * 4
    # level 80: k = ceil(4.8) = 5, the largest score; level 95: k = 6 > n, the largest with no guarantee
    assert cal.fit_calibration(Y, [10.0] * 5, [8.0] * 5, [14.0] * 5, 80).factor == 2.0
    capped = cal.fit_calibration(Y, [10.0] * 5, [8.0] * 5, [14.0] * 5, 95)
    assert (capped.factor, capped.rank, capped.finite_sample) == (2.0, 6, False)


def test_zero_width_intervals_do_not_divide_by_zero():
    # Both half-widths zero: scores 0, inf, inf -> the absolute-residual fallback, |y - mean| = 0, 1, 1.
    fitted = cal.fit_calibration([10.0, 11.0, 9.0], [10.0] * 3, [10.0] * 3, [10.0] * 3, 50)
    assert (fitted.method, fitted.factor) == ("absolute", 1.0)
    lo, hi = cal.calibrate_interval([20.0], [20.0], [20.0], fitted)
    assert (lo[0], hi[0]) == (19.0, 21.0)
    # One side zero: scores 0, 0.5 (11 above a half-width of 2), inf (9.5 below a zero half-width).
    assert cal.conformity_scores([10.0, 11.0, 9.5], [10.0] * 3, [10.0] * 3, [12.0] * 3).tolist() == [0.0, 0.5, math.inf]
    one_sided = cal.fit_calibration([10.0, 11.0, 9.5], [10.0] * 3, [10.0] * 3, [12.0] * 3, 50)
    assert (one_sided.method, one_sided.factor) == ("scaled", 0.5)
    lo, hi = cal.calibrate_interval([10.0], [10.0], [12.0], one_sided)
    assert (lo[0], hi[0]) == (10.0, 11.0)
    # A bound on the wrong side of the mean counts as zero width, never as a negative one.
    assert cal.conformity_scores([10.0], [10.0], [10.5], [12.0]).tolist() == [0.0]


def test_nesting_is_enforced_where_the_levels_would_cross():
    mean = np.array([10.0, 10.0])
    bands = {80: (np.array([8.0, 8.0]), np.array([12.0, 12.0])), 95: (np.array([7.0, 7.0]), np.array([13.0, 13.0]))}
    fitted = {80: cal.IntervalCalibration(80, "scaled", 2.0, 10, 9, True),  # 80%: [6, 14]
              95: cal.IntervalCalibration(95, "scaled", 1.0, 10, 11, False)}  # 95% alone: [7, 13], inside it
    out = cal.calibrate_bands(mean, bands, fitted)
    assert out[80][0].tolist() == [6.0, 6.0] and out[80][1].tolist() == [14.0, 14.0]
    assert out[95][0].tolist() == [6.0, 6.0] and out[95][1].tolist() == [14.0, 14.0]
    with pytest.raises(ValueError, match=r"no calibration for levels \[95\]"):
        cal.calibrate_bands(mean, bands, {80: fitted[80]})


def _normal_bands(rng, n, scale, h=14):
    """``n`` forecasts of N(0, sd_h) errors, sd_h = step, with intervals ``scale`` times the right width."""
    step = np.tile(np.arange(1, h + 1), n // h)
    y = rng.normal(0.0, step)
    z = {80: 1.2815515655446004, 95: 1.959963984540054}  # standard normal quantiles
    mean = np.zeros_like(y)
    return step, y, mean, {lv: (-scale * z[lv] * step, scale * z[lv] * step) for lv in z}


@pytest.mark.parametrize("scale", [3.0, 0.4])  # intervals three times too wide / far too narrow
def test_calibration_fixes_a_wrong_width_on_iid_data(scale):
    rng = np.random.default_rng(20261124)
    _, y, mean, bands = _normal_bands(rng, 700, scale)
    step, y_new, mean_new, bands_new = _normal_bands(rng, 28_000, scale)
    fitted = {lv: cal.fit_calibration(y, mean, *bands[lv], lv) for lv in bands}
    calibrated = cal.calibrate_bands(mean_new, bands_new, fitted)
    for lv, p in ((80, 0.8), (95, 0.95)):
        raw = np.mean((y_new >= bands_new[lv][0]) & (y_new <= bands_new[lv][1]))
        got = np.mean((y_new >= calibrated[lv][0]) & (y_new <= calibrated[lv][1]))
        # binomial sd of the calibration set's own coverage and of the fresh sample's
        tolerance = 3 * math.sqrt(p * (1 - p) / len(y) + p * (1 - p) / len(y_new))
        assert abs(raw - p) > tolerance  # the raw interval is wrong ...
        assert abs(got - p) < tolerance  # ... the calibrated one says what it means
        assert fitted[lv].factor == pytest.approx(1 / scale, rel=0.15)
        # One factor for all steps keeps the model's widening, which is right here: every step is calibrated.
        inside = (y_new >= calibrated[lv][0]) & (y_new <= calibrated[lv][1])
        by_step = pd.Series(inside).groupby(step).mean()
        assert (by_step - p).abs().max() < 3 * math.sqrt(p * (1 - p) / (len(y_new) / 14)) + tolerance
    assert (calibrated[95][0] <= calibrated[80][0]).all() and (calibrated[80][1] <= calibrated[95][1]).all()


def _backtest_table():
    """Two selection folds and two evaluation folds of a model 'm' with intervals mean -/+ 2 and -/+ 4."""
    rng = np.random.default_rng(3)
    cutoffs = pd.to_datetime(["2020-01-10", "2020-01-20", "2020-01-30", "2020-02-09"])
    rows = []
    for i, cutoff in enumerate(cutoffs):
        ds = pd.date_range(cutoff + pd.Timedelta("1D"), periods=7)
        y = 100 + rng.normal(0, 1.5, 7)
        rows.append(pd.DataFrame({"unique_id": "s", "ds": ds, "cutoff": cutoff, "y": y, "m": 100.0,
                                  "m-lo-80": 98.0, "m-hi-80": 102.0, "m-lo-95": 96.0, "m-hi-95": 104.0,
                                  "role": "selection" if i < 2 else "evaluation"}))
    return pd.concat(rows, ignore_index=True)


# Offsets of y from a forecast of 100 whose 80% interval is 100 -/+ 2: two calm folds, then two
# rough ones (|offset| > 2 on 2 of 7 days: the model's own interval covers 5/7 of them).
CALM = [0.1, -0.1, 0.2, -0.2, 0.0, 0.1, -0.1]
ROUGH = [1.0, -1.0, 1.5, -1.5, 3.0, -3.0, 0.5]


def _calm_then_rough():
    cutoffs = pd.to_datetime(["2020-01-10", "2020-01-20", "2020-01-30", "2020-02-09"])
    return pd.concat([pd.DataFrame({"unique_id": "s", "ds": pd.date_range(cutoff + pd.Timedelta("1D"), periods=7),
                                    "cutoff": cutoff, "y": 100 + np.array(offsets), "m": 100.0,
                                    "m-lo-80": 98.0, "m-hi-80": 102.0, "m-lo-95": 96.0, "m-hi-95": 104.0,
                                    "role": "selection" if i < 2 else "evaluation"})
                      for i, (cutoff, offsets) in enumerate(zip(cutoffs, [CALM, CALM, ROUGH, ROUGH]))],
                     ignore_index=True)


def test_known_at_a_cutoff_are_the_finished_folds_and_at_least_the_selection_folds():
    table = _calm_then_rough()
    cutoffs = sorted(table["cutoff"].unique())
    folds = lambda mask: sorted(table.loc[mask, "cutoff"].unique())  # noqa: E731
    assert folds(cal.known_at(table, cutoffs[2])) == cutoffs[:2]  # the first fold ends 17 Jan, the second 27 Jan
    assert folds(cal.known_at(table, cutoffs[3])) == cutoffs[:3]
    assert folds(cal.known_at(table, cutoffs[0])) == cutoffs[:2]  # never fewer than the selection folds ...
    assert folds(cal.known_at(table, cutoffs[0], strict=True)) == []  # ... unless strict
    assert cal.known_at(table).all()
    with pytest.raises(ValueError, match="'role' column"):
        cal.known_at(table.drop(columns="role"), cutoffs[0])


def test_each_fold_is_calibrated_on_the_folds_finished_before_it():
    """By hand, 80%: scores are |offset| / 2. On the two calm folds (n=14, k=12) q = 0.1, a band
    of -/+ 0.2; on those and the first rough fold (n=21, k=18) q = 0.75, a band of -/+ 1.5."""
    table = _calm_then_rough()
    calibrated, served = cal.calibrate_by_fold(table, ["m"], [80])
    halfwidth = (calibrated["m-hi-80"] - calibrated["m"]).groupby(calibrated["cutoff"]).unique()
    assert [list(w) for w in halfwidth] == [[pytest.approx(0.2)]] * 3 + [[pytest.approx(1.5)]]
    # Served: at the third cutoff the calibration had never done worse than the model's own
    # interval (fold 2 calibrated on fold 1 covers 7/7, as does the raw band), so it is served;
    # at the fourth, fold 3 calibrated on folds 1-2 had covered 0/7: over folds 2-3 the
    # calibration covered 7/14, the model's own band 12/14, nearer 80%. The raw band is served.
    halfwidth = (served["m-hi-80"] - served["m"]).groupby(served["cutoff"]).unique()
    assert [list(w) for w in halfwidth] == [[pytest.approx(0.2)]] * 3 + [[pytest.approx(2.0)]]
    # No look-ahead: what follows a fold's cutoff changes nothing in its band.
    later = table.assign(y=table["y"].where(table["cutoff"] < table["cutoff"].max(), 500.0))
    assert cal.calibrate_by_fold(later, ["m"], [80])[0]["m-hi-80"].equals(calibrated["m-hi-80"])
    assert calibrated["y"].equals(table["y"]) and calibrated.index.equals(table.index)


def test_the_served_interval_is_the_one_nearer_its_level_on_the_finished_folds():
    table = _calm_then_rough()
    # Folds 2-4 each calibrated on the folds before: 7/7, 0/7 and 5/7 (band -/+ 1.5) = 12/21;
    # the model's own interval: 7/7, 5/7, 5/7 = 17/21, nearer 0.8.
    served = cal.served_calibration(table, "m", 80)
    assert (served.method, served.factor) == ("model", 1.0)
    assert served.n == 28 and served.rank == 24  # still reports the calibration it declined
    # An interval three times too wide on exchangeable folds: the calibration is nearer and served.
    rng = np.random.default_rng(7)
    wide = pd.concat([table.assign(cutoff=table["cutoff"] + pd.Timedelta(days=40 * k),
                                   ds=table["ds"] + pd.Timedelta(days=40 * k)) for k in range(3)], ignore_index=True)
    wide["y"] = 100 + rng.normal(0, 2 / 3 / 1.2816, len(wide))
    chosen = cal.served_calibration(wide, "m", 80)
    assert chosen.method == "scaled" and chosen.factor == pytest.approx(1 / 3, rel=0.3)
    assert cal.served_calibrations(wide, ["m"], [80]) == {"m": {80: chosen}}
    assert cal.calibrate_interval([100.0], [98.0], [102.0], served) == ([98.0], [102.0])


def test_calibrated_table_and_fold_coverage():
    table = _backtest_table()
    fitted = {"m": {80: cal.IntervalCalibration(80, "scaled", 0.5, 14, 12, True),
                    95: cal.IntervalCalibration(95, "absolute", 3.0, 14, 15, False)}}
    out = cal.calibrate_forecasts(table, fitted)
    assert out[["m-lo-80", "m-hi-80"]].iloc[0].tolist() == [99.0, 101.0]  # 100 -/+ 0.5 * 2
    assert out[["m-lo-95", "m-hi-95"]].iloc[0].tolist() == [97.0, 103.0]  # 100 -/+ 3
    assert out.drop(columns=["m-lo-80", "m-hi-80", "m-lo-95", "m-hi-95"]).equals(
        table.drop(columns=["m-lo-80", "m-hi-80", "m-lo-95", "m-hi-95"]))
    assert table["m-lo-80"].eq(98.0).all()  # the caller's table is not changed
    coverage = cal.fold_coverage(out, ["m"], [80])
    first = out[out["cutoff"] == out["cutoff"].min()]
    expected = float(((first["y"] >= 99.0) & (first["y"] <= 101.0)).sum() / 7)
    assert coverage.iloc[0].to_dict() == {"cutoff": first["cutoff"].iloc[0], "model": "m", "metric": "coverage_80",
                                          "value": expected}
    assert len(coverage) == 4


def test_record_round_trip_and_bad_input():
    fitted = cal.fit_calibrations(_backtest_table(), ["m"])
    assert cal.from_record(cal.to_record(fitted)) == fitted
    with pytest.raises(ValueError, match="run the model comparison again"):
        cal.from_record(None)
    with pytest.raises(ValueError, match="must be finite"):
        cal.conformity_scores([1.0, np.nan], [1.0, 1.0], [0.0, 0.0], [2.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        cal.conformity_scores([1.0], [1.0, 1.0], [0.0, 0.0], [2.0, 2.0])
    with pytest.raises(ValueError, match="whole percentage"):
        cal.conformal_rank(10, 0.8)
    with pytest.raises(ValueError, match="no selection-fold points"):
        cal.conformal_quantile([], 80)
