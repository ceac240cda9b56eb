"""Short series loaded from a file, analysed as the notebooks do: each analysis names the minimum it needs.

Before, the pipeline on a 3-row file failed in the EDA with MSTL's UnboundLocalError and in
the model comparison with "1 points cannot hold 4 folds"; a file whose rows all share one
timestamp left a catalog entry for 0 rows, and every notebook failed with "no raw rows".
"""

from __future__ import annotations

import pytest

from helpers.analysis import eda
from helpers.analysis import hypotheses as hy
from helpers.core.paths import project_root
from helpers.core.settings import load_settings
from helpers.data.ingest import ingest_file
from helpers.data.series import load_series
from helpers.forecast import comparison as cmp
from helpers.warehouse import Warehouse
from tests.support import SHORT


@pytest.fixture(params=["three_rows.csv", "same_timestamp_copies.csv"])
def views(request, tmp_path, spec):
    with Warehouse.open("duckdb", tmp_path / "wh.duckdb") as warehouse:
        ingest_file(SHORT / request.param, spec, warehouse)
        return {grain: load_series(warehouse, "fixture", grain) for grain in ("daily", "hourly")}


def test_each_analysis_of_a_short_series_says_the_minimum_it_needs(views, clean_env):
    daily, hourly = views["daily"], views["hourly"]
    assert len(daily) == 1
    with pytest.raises(ValueError, match=r"^STL with period 7 needs at least 14 values \(two full cycles\), "
                                         r"the series has 1; load a longer series$"):
        eda.stl_decomposition(daily.set_index("ds")["y"], period=7)
    with pytest.raises(ValueError, match=r"^MSTL with periods 24, 168 needs at least 337 values"):
        eda.mstl_decomposition(hourly.set_index("ds")["y"], periods=(24, 168))
    family, registered = hy.load_registry(project_root() / "hypotheses.yaml")
    table = hy.run_registry(hy.daily_frame(daily), registered, family["correction"])
    assert (table["status"] == "not tested").all()
    assert table["interpretation"].str.contains("needs at least 30").all()
    settings = load_settings("test")
    for grain, view, minimum in (("daily", daily, 33), ("hourly", hourly, 672)):
        config = cmp.ComparisonConfig.from_settings(settings, grain)
        with pytest.raises(ValueError, match=rf"^the {grain} model comparison needs at least {minimum} values "
                                             rf"\({settings.daily_folds if grain == 'daily' else 2} folds"):
            cmp.run_comparison(cmp.prepare_frame(view), config)
