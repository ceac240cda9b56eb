"""Work days from a public-holiday calendar (the ``holidays`` package).

A work day is Monday to Friday and not a public holiday of the configured country (and
subdivision). Unlike an observed covariate, the flag is known for any future date, so
models that use it are still forecasts of the future and can be deployed.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from helpers.core.settings import check_calendar


def holiday_dates(country: str, subdiv: str | None, years: Iterable[int]) -> dict:
    import holidays

    check_calendar(country, subdiv)
    return dict(holidays.country_holidays(country, subdiv=subdiv or None, years=sorted(set(years))))


def workday_flags(ds: pd.Series, country: str, subdiv: str | None = None) -> pd.Series:
    """1.0 on Monday-Friday dates that are not public holidays, else 0.0; aligned with ``ds``."""
    ds = pd.to_datetime(ds)
    days = ds.dt.normalize()
    calendar = holiday_dates(country, subdiv, days.dt.year.unique().tolist())
    holiday = days.dt.date.isin(set(calendar))
    return ((days.dt.dayofweek < 5) & ~holiday).astype(float).rename("workday")


def agreement(flags: pd.Series, observed: pd.Series) -> dict[str, int]:
    """How many dates the calendar and an observed 0/1 flag agree on (NaN observed ignored)."""
    both = pd.concat([flags.rename("calendar"), observed.rename("observed")], axis=1).dropna()
    return {"dates": len(both), "agree": int((both["calendar"] == both["observed"]).sum()),
            "differ": int((both["calendar"] != both["observed"]).sum())}


def describe_agreement(counts: dict[str, int]) -> str:
    """:func:`agreement`'s counts as a sentence for a report."""
    if not counts["dates"]:
        return "The data has no work-day flag to compare the calendar with."
    if not counts["differ"]:
        return f"The calendar's work days agree with the data's flag on all {counts['dates']:,} days."
    return (f"The calendar's work days agree with the data's flag on {counts['agree']:,} of {counts['dates']:,} days "
            f"and differ on {counts['differ']:,}.")


def holiday_table(ds: pd.Series, observed: pd.Series | None, country: str, subdiv: str | None = None) -> pd.DataFrame:
    """The public holidays between the first and last date of ``ds``, with the observed
    work-day flag on each (``observed`` indexed by date) when the data has one."""
    days = pd.to_datetime(ds).dt.normalize()
    calendar = holiday_dates(country, subdiv, range(days.min().year, days.max().year + 1))
    rows = [{"date": pd.Timestamp(d), "holiday": name, "weekday": pd.Timestamp(d).day_name()}
            for d, name in sorted(calendar.items()) if days.min() <= pd.Timestamp(d) <= days.max()]
    table = pd.DataFrame(rows, columns=["date", "holiday", "weekday"])
    if observed is not None:
        table["observed work day"] = table["date"].map(observed)
    return table
