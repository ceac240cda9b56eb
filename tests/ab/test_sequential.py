"""SPRT and mSPRT: known statistics, stop days, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.ab import sequential
from helpers.ab.inputs import NotAnalysable
from tests.ab.builders import CONFIG


def test_sprt_statistics_and_stop():
    low, high = sequential.sprt_bounds(0.05, 0.2)
    assert low == pytest.approx(np.log(0.2 / 0.95)) and high == pytest.approx(np.log(0.8 / 0.05))
    n = np.array([1000, 2000, 3000, 4000])
    path = sequential.sequential_path(n, n * 0.10, n, n * 0.13, delta=0.01, alpha=0.05, beta=0.2)
    var = 0.1 * 0.9 / n + 0.13 * 0.87 / n
    assert path["llr"].to_numpy() == pytest.approx((0.01 * 0.03 - 0.01 ** 2 / 2) / var)
    assert (np.diff(path["msprt_p"]) <= 0).all()
    stop = sequential.first_stop(path, 0.05)
    assert stop["sprt_conclusion"] == "lift" and stop["sprt_look"] == int(np.argmax(path["llr"] >= high))
    same = sequential.sequential_path(5 * n, 5 * n * 0.1, 5 * n, 5 * n * 0.1, delta=0.01, alpha=0.05, beta=0.2)
    assert sequential.first_stop(same, 0.05)["sprt_conclusion"] == "no lift" and sequential.first_stop(same, 0.05)["msprt_look"] is None


def test_daily_monitoring_names_the_stop_day():
    days = pd.date_range("2026-01-05", periods=10)
    rows = []
    for k, day in enumerate(days, start=1):
        rows += [{"variant": "control", "day": day, "users": 2000 * k, "conversions": 200 * k, "revenue": 0.0},
                 {"variant": "b", "day": day, "users": 2000 * k, "conversions": 240 * k, "revenue": 0.0}]
    result = sequential.sequential_monitoring(pd.DataFrame(rows), "control", CONFIG)
    paths, stops = result.paths, result.stops
    # burn-in of 2 days (control rate 10%) sizes the effect; the tests start on day 3
    assert len(paths) == 8 and paths["day"].min() == days[2] and stops.loc[0, "SPRT conclusion"] == "lift"
    assert stops.loc[0, "baseline rate"] == pytest.approx(0.10) and stops.loc[0, "MDE (absolute)"] == pytest.approx(0.01)
    assert stops.loc[0, "SPRT stop day"] in set(days[2:]) and stops.loc[0, "mSPRT stop day"] in set(days[2:])
    assert "first 2 days (burn-in" in result.method
    # after the burn-in the counts restart: day 3 holds one day of data, 2000 users per arm
    n = 2000
    var = 0.1 * 0.9 / n + 0.12 * 0.88 / n
    assert paths["llr"].iloc[0] == pytest.approx((0.01 * 0.02 - 0.01 ** 2 / 2) / var)
    planned = sequential.sequential_monitoring(pd.DataFrame(rows), "control", CONFIG, baseline_rate=0.08)
    assert len(planned.paths) == 10 and planned.stops.loc[0, "MDE (absolute)"] == pytest.approx(0.008)
    assert "pre-registered baseline rate" in planned.method
    with pytest.raises(NotAnalysable, match="control 'nobody'"):
        sequential.sequential_monitoring(pd.DataFrame(rows), "nobody", CONFIG)
    with pytest.raises(NotAnalysable, match="more than the 2 burn-in days"):
        sequential.sequential_monitoring(pd.DataFrame(rows[:4]), "control", CONFIG)


def _cumulative(daily: list[tuple[int, int, int, int]]) -> pd.DataFrame:
    """Cumulative rows from per-day (control users, control conversions, b users, b conversions)."""
    counts = np.cumsum(np.array(daily), axis=0)
    days = pd.date_range("2026-01-05", periods=len(daily))
    return pd.DataFrame([{"variant": v, "day": day, "users": int(row[k]), "conversions": int(row[k + 1]),
                          "revenue": 0.0} for day, row in zip(days, counts) for v, k in (("control", 0), ("b", 2))])


@pytest.mark.parametrize("baseline_rate", [None, 0.10])
def test_sequential_statistics_do_not_look_ahead(baseline_rate):
    """The statistics shown for days 1..7 are the same whatever days 8-14 hold. The old code sized
    the effect (and the mSPRT's mixing width) from the control's rate on the last day, so
    appending different days 8-14 changed the day 1..7 values and the stopping day."""
    rng = np.random.default_rng(4)
    first = [(2000, rng.binomial(2000, 0.10), 2000, rng.binomial(2000, 0.12)) for _ in range(7)]
    calm = [(2000, 200, 2000, 200)] * 7
    wild = [(2000, 600, 2000, 100)] * 7   # the control's rate triples after day 7
    a = sequential.sequential_monitoring(_cumulative(first + calm), "control", CONFIG, baseline_rate).paths
    b = sequential.sequential_monitoring(_cumulative(first + wild), "control", CONFIG, baseline_rate).paths
    seven = pd.date_range("2026-01-05", periods=7)
    pd.testing.assert_frame_equal(a[a["day"].isin(seven)].reset_index(drop=True),
                                  b[b["day"].isin(seven)].reset_index(drop=True))
    assert not a["llr"].equals(b["llr"])  # the later days do differ
