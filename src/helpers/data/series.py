"""Series as the analyses see them: one long table ``unique_id, ds, y`` plus covariates.

Gap handling (the project's stated choice, tested in ``tests/data/test_series.py``):

- the warehouse keeps only what was observed; nothing is invented at load time;
- the analysis view is reindexed to the full grid of the series' frequency;
- runs of at most ``max_fill_steps`` consecutive missing steps are filled by linear
  interpolation in time (target and temperature; the work-day flag is copied from the
  same calendar day), and marked ``filled = True``;
- longer runs stay missing (``NaN``), so a model or test that needs a complete series must
  say how it handles them rather than silently using invented values.

Daily totals (``measure='y_sum'``) on days with missing intervals are estimated as the
day's mean times the expected number of intervals, i.e. missing intervals count at the
day's average; a day with no observation at all is missing.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from helpers.warehouse import Warehouse

#: Base temperature of heating and cooling degree-days, deg C (a common choice for Australia).
DEGREE_DAY_BASE = 18.0
Grain = Literal["raw", "hourly", "daily"]
GRAIN_FREQ = {"hourly": "1h", "daily": "1D"}
_TABLES = {"raw": "raw_series", "hourly": "hourly_series", "daily": "daily_series"}


class SeriesNotFoundError(LookupError):
    """The warehouse has no such series (or no such aggregate of it)."""


class SeriesNotAnalysableError(ValueError):
    """The series is too short, or constant, for an analysis; the message says what the analysis needs."""


def require_length(n: int, minimum: int, analysis: str, why: str) -> None:
    """Raise :class:`SeriesNotAnalysableError` unless ``n >= minimum`` values are there.

    ``analysis`` names what needs them (``STL with period 7``), ``why`` says why that many
    (``two full cycles``).
    """
    if n < minimum:
        raise SeriesNotAnalysableError(f"{analysis} needs at least {minimum} values ({why}), the series has {n}; "
                                       "load a longer series")


def series_freq(warehouse: Warehouse, series_id: str) -> str:
    """The frequency recorded for ``series_id`` at its last ingest."""
    catalog = warehouse.query("select_catalog", [series_id])
    if catalog.empty:
        raise SeriesNotFoundError(f"series {series_id!r} is not in the warehouse; ingest it first (make run)")
    return str(catalog["freq"].iloc[0])


def daily_total_scale(warehouse: Warehouse, series_id: str) -> float:
    """The factor from a day's mean (``daily_series.y_mean``) to the daily total the models forecast
    (:func:`load_series`): the steps of the series in a day, 48 for half-hourly data; 1.0 for a
    series the catalog does not know (no ingest recorded its frequency)."""
    try:
        return steps_per_period(series_freq(warehouse, series_id), "1D")
    except SeriesNotFoundError:
        return 1.0


def steps_per_period(freq: str, period: str = "1D") -> float:
    """How many steps of a fixed frequency ``freq`` fill one ``period`` (``30min`` in ``1D``: 48).

    Raises ``ValueError`` for calendar frequencies such as ``MS``, whose length varies.
    """
    return pd.Timedelta(period) / pd.Timedelta(freq)


def completeness(view: pd.DataFrame) -> dict[str, int]:
    """Steps of a :func:`load_series` view: on the grid, observed, interpolated and still missing."""
    return {"steps on the grid": len(view),
            "observed": int((view["y"].notna() & ~view["filled"]).sum()),
            "interpolated (short gaps)": int(view["filled"].sum()),
            "missing (long gaps)": int(view["y"].isna().sum())}


def short_gap_mask(values: pd.Series, max_steps: int) -> pd.Series:
    """True on missing values that belong to a run of at most ``max_steps`` interior NaNs."""
    missing = values.isna()
    run_id = (missing != missing.shift()).cumsum()
    run_length = missing.groupby(run_id).transform("sum")
    interior = values.ffill().notna() & values.bfill().notna()
    return missing & (run_length <= max_steps) & interior


def fill_short_gaps(values: pd.Series, max_steps: int) -> tuple[pd.Series, pd.Series]:
    """Interpolate (in time) only runs of at most ``max_steps`` missing values.

    Returns the filled series and the boolean mask of values that were filled.
    """
    fillable = short_gap_mask(values, max_steps)
    interpolated = values.interpolate(method="time", limit_area="inside")
    return values.where(~fillable, interpolated), fillable


def load_series(
    warehouse: Warehouse,
    series_id: str,
    grain: Grain = "raw",
    measure: str | None = None,
    max_fill_steps: int = 4,
) -> pd.DataFrame:
    """One series on its full time grid, short gaps filled (see the module docstring).

    Args:
        grain: ``raw`` (as ingested), ``hourly`` or ``daily`` aggregates.
        measure: aggregate column used as ``y`` (``y_mean`` or ``y_sum``); defaults to
            ``y_mean`` for hourly and ``y_sum`` (daily total) for daily data.
        max_fill_steps: longest run of missing steps that is interpolated.

    Returns:
        Columns ``unique_id, ds, y, temperature, workday, filled``; ``temperature`` and
        ``workday`` are all-missing when the series has no such covariate.
    """
    if grain not in _TABLES:
        raise ValueError(f"grain must be one of {sorted(_TABLES)}, got {grain!r}")
    freq = series_freq(warehouse, series_id)
    rows = warehouse.read_series(_TABLES[grain], series_id)
    if rows.empty:
        raise SeriesNotFoundError(f"no {grain} rows for series {series_id!r}; its frequency {freq} may be coarser")
    if grain == "raw":
        y = rows["y"]
        temperature = rows["temperature"]
    else:
        measure = measure or ("y_mean" if grain == "hourly" else "y_sum")
        if measure not in ("y_mean", "y_sum"):
            raise ValueError(f"measure must be 'y_mean' or 'y_sum', got {measure!r}")
        if measure == "y_sum":
            y = rows["y_mean"] * steps_per_period(freq, GRAIN_FREQ[grain])
        else:
            y = rows["y_mean"]
        temperature = rows["temperature_mean"]
        freq = GRAIN_FREQ[grain]

    observed = pd.DataFrame({"y": y.to_numpy(dtype=float), "temperature": temperature.to_numpy(dtype=float),
                             "workday": rows["workday"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)},
                            index=pd.DatetimeIndex(rows["ts"], name="ds"))
    grid = pd.date_range(observed.index.min(), observed.index.max(), freq=freq, name="ds")
    full = observed.reindex(grid)
    full["y"], filled = fill_short_gaps(full["y"], max_fill_steps)
    full["temperature"], _ = fill_short_gaps(full["temperature"], max_fill_steps)
    day = full.index.normalize()
    full["workday"] = full["workday"].groupby(day).transform(lambda s: s.ffill().bfill())
    full["filled"] = filled.to_numpy()
    full = full.reset_index()
    full.insert(0, "unique_id", series_id)
    return full[["unique_id", "ds", "y", "temperature", "workday", "filled"]]


def window_features(warehouse: Warehouse, series_id: str, grain: Literal["hourly", "daily"] = "daily",
                    measure: str = "y_mean", window: int | None = None, season: int | None = None) -> pd.DataFrame:
    """Rolling mean, lags and season-over-season change, computed in SQL with window functions.

    Defaults: daily - 7-day rolling mean and change against the same weekday a week ago;
    hourly - 24-hour rolling mean and change against the same hour a week (168 h) ago.
    """
    if grain not in GRAIN_FREQ:
        raise ValueError(f"grain must be 'hourly' or 'daily', got {grain!r}")
    window = window or (7 if grain == "daily" else 24)
    season = season or (7 if grain == "daily" else 168)
    return warehouse.query("window_features", [series_id], table=_TABLES[grain], measure=measure,
                           window_preceding=window - 1, season=season)


def degree_days(temperature: pd.Series, base: float = DEGREE_DAY_BASE) -> pd.Series:
    """Heating plus cooling degree-days, ``|temperature - base|`` (deg C): demand for heat or cooling."""
    return (temperature - base).abs()
