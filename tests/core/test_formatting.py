from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from helpers.core import formatting as f


@pytest.mark.parametrize("value, text", [
    (None, "\u2013"), (np.nan, "\u2013"), (pd.NA, "\u2013"), (pd.NaT, "\u2013"), (float("nan"), "\u2013"),
    (True, "yes"), (np.bool_(False), "no"), (17520, "17,520"), (np.int64(-3), "-3"), (17520.0, "17,520"),
    (13.850481704178579, "13.9"), (0.04566, "0.0457"), (0.5, "0.5"), (1.0, "1"), (0.0, "0"),
    (9.231379e-09, "< 0.0001"), (-9.2e-09, "> -0.0001"), (1234567.891, "1,234,568"), (-0.1234, "-0.123"),
    (203.005, "203"), (float("inf"), "\u221e"), (float("-inf"), "-\u221e"), (99.96, "100"),
])
def test_numbers_have_a_few_significant_digits_and_never_an_exponent(value, text):
    assert f.number(value) == text


@pytest.mark.parametrize("share, text", [
    (0.42857142857142855, "42.9%"), (1.0, "100%"), (0.0025, "0.25%"), (0.0, "0%"), (0.00001, "< 0.01%"),
    (-0.00001, "> -0.01%"), (0.05, "5%"), (None, "\u2013"), (0.99812, "99.8%"), (-0.0464, "-4.64%"),
])
def test_shares_are_percentages(share, text):
    assert f.percent(share) == text


def test_differences_of_shares_are_signed_percentage_points():
    assert [f.points(v) for v in (0.0078, -0.0130, 0.0, None, 0.000001)] == [
        "+0.78 pp", "-1.3 pp", "0 pp", "\u2013", "< 0.01 pp"]


def test_p_values_below_a_thousandth_are_bounded():
    assert [f.p_value(v) for v in (3.05e-40, 0.000999, 0.001, 0.0457, 0.255, 1.0, np.nan)] == [
        "< 0.001", "< 0.001", "0.001", "0.0457", "0.255", "1", "\u2013"]
    assert f.p_clause(1e-9) == "p < 0.001" and f.p_clause(0.2554) == "p = 0.255"


def test_dates_show_the_precision_they_have():
    assert f.when(pd.Timestamp("2014-01-01")) == "2014-01-01"
    assert f.when(pd.Timestamp("2014-01-01 13:30")) == "2014-01-01 13:30"
    assert f.when(pd.Timestamp("2014-01-01 13:30:05")) == "2014-01-01 13:30:05"
    assert f.when(dt.date(2014, 1, 2)) == "2014-01-02" and f.when("as given") == "as given"
    assert f.when(pd.Timestamp("2014-01-01 13:30:05"), "day") == "2014-01-01" and f.when(None) == "\u2013"
    stamps = pd.Series(pd.to_datetime(["2026-10-25 23:45:00", "2026-10-25 23:55:51", None]))
    assert f.precision(stamps) == "second" and f.precision(stamps.iloc[:1]) == "minute"
    assert f.precision(pd.Series(pd.to_datetime(["2014-01-01", None]))) == "day"


def test_any_cell_reads_as_text():
    assert f.text({"dates": 365, "agree": 365, "differ": 0}) == "dates: 365; agree: 365; differ: 0"
    assert f.text(["a", 1.5, None]) == "a, 1.5, \u2013" and f.text(np.datetime64("2014-01-01")) == "2014-01-01"
    assert f.text("words") == "words" and f.text(None) == "\u2013" and f.text(0.123456) == "0.123"
