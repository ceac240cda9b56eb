"""The shipped default data is exactly what the provenance note says it is."""

from __future__ import annotations

import pandas as pd

from helpers.data.datasets import ELECDEMAND_ROWS, export_elecdemand
from helpers.core.paths import project_root
from helpers.core.provenance import file_sha256

SHIPPED = project_root() / "data" / "elecdemand.csv.gz"


def test_shipped_file_regenerates_byte_for_byte(tmp_path):
    regenerated = export_elecdemand(tmp_path / "elecdemand.csv.gz")
    assert file_sha256(regenerated) == file_sha256(SHIPPED)


def test_shipped_file_shape_and_ranges():
    frame = pd.read_csv(SHIPPED, parse_dates=["timestamp"])
    assert len(frame) == ELECDEMAND_ROWS
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2014-01-01 00:00")
    assert frame["timestamp"].iloc[-1] == pd.Timestamp("2014-12-31 23:30")
    assert frame["demand"].between(2, 10).all()
    assert set(frame["workday"].unique()) == {0, 1}
