"""Work days from the public-holiday calendar."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.data import calendar as workdays


def test_victorian_holidays_and_weekends_are_not_work_days():
    ds = pd.Series(pd.date_range("2014-11-01", "2014-11-07", freq="1D"))
    flags = workdays.workday_flags(ds, "AU", "VIC")
    # Sat 1, Sun 2, Mon 3, Tue 4 (Melbourne Cup, Victoria only), Wed 5 .. Fri 7.
    assert flags.tolist() == [0, 0, 1, 0, 1, 1, 1]
    assert workdays.workday_flags(ds, "AU", "NSW").tolist() == [0, 0, 1, 1, 1, 1, 1]


def test_hourly_timestamps_take_their_date_and_span_years():
    ds = pd.Series(pd.date_range("2014-12-31 22:00", periods=4, freq="1h"))
    assert workdays.workday_flags(ds, "AU", "VIC").tolist() == [1, 1, 0, 0]  # 1 January is a holiday


def test_agreement_counts_matching_dates():
    calendar = pd.Series([1.0, 0.0, 1.0], index=[1, 2, 3])
    observed = pd.Series([1.0, 1.0, None], index=[1, 2, 3])
    assert workdays.agreement(calendar, observed) == {"dates": 2, "agree": 1, "differ": 1}


def test_agreement_reads_as_a_sentence():
    assert workdays.describe_agreement({"dates": 1365, "agree": 1365, "differ": 0}) == (
        "The calendar's work days agree with the data's flag on all 1,365 days.")
    assert workdays.describe_agreement({"dates": 365, "agree": 363, "differ": 2}) == (
        "The calendar's work days agree with the data's flag on 363 of 365 days and differ on 2.")
    assert "no work-day flag" in workdays.describe_agreement({"dates": 0, "agree": 0, "differ": 0})


@pytest.mark.parametrize("country, subdiv, message", [
    ("Australia", None, "holiday_country must be an ISO 3166 code"), ("AU", "Victoria", "subdivision of AU: ACT"),
])
def test_unknown_calendars_name_the_allowed_values(country, subdiv, message):
    with pytest.raises(ValueError, match=message):
        workdays.check_calendar(country, subdiv)


def test_holiday_table_lists_the_holidays_in_range_with_the_observed_flag():
    ds = pd.Series(pd.date_range("2014-10-01", "2014-12-31", freq="1D"))
    observed = pd.Series(1.0, index=ds).where(~ds.isin(pd.to_datetime(["2014-11-04"])).to_numpy(), 0.0)
    table = workdays.holiday_table(ds, observed, "AU", "VIC")
    assert table["holiday"].tolist() == ["Melbourne Cup Day", "Christmas Day", "Boxing Day"]
    assert table["observed work day"].tolist() == [0.0, 1.0, 1.0]
    assert "observed work day" not in workdays.holiday_table(ds, None, "AU", "VIC")
