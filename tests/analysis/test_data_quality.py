from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from helpers.analysis import data_quality as dq_summary
from helpers.data.ingest import ingest_file
from helpers.publish.notebook import provenance_table, setup
from tests.support import DQ


@pytest.fixture
def loaded(warehouse, spec):
    report = ingest_file(DQ / "unknown_category.csv", spec, warehouse)
    return warehouse, report


def test_tables_from_the_latest_run(loaded, tmp_path):
    warehouse, report = loaded
    run = dq_summary.load_run(warehouse, "fixture")
    assert run["run_id"] == report.run_id
    accounting = dq_summary.accounting_table(run).set_index("quantity")["value"]
    assert accounting["rows read"] == 8 and accounting["read = loaded + quarantined"] == "yes"
    problems = dq_summary.problems_table(run).set_index("problem")
    assert problems.loc["unknown_category", "rows"] == 2
    path = tmp_path / "report.json"
    path.write_text(report.to_json())
    assert dq_summary.load_run(warehouse, "fixture", path)["run_id"] == report.run_id
    path.write_text(json.dumps({"run_id": "other"}))
    with pytest.raises(LookupError, match="not in the warehouse"):
        dq_summary.load_run(warehouse, "fixture", path)
    with pytest.raises(LookupError, match="run the ingest first"):
        dq_summary.load_run(warehouse, "never-loaded")


def test_reasons_and_coverage_figure(loaded):
    warehouse, report = loaded
    quarantine = warehouse.query("select_quarantine", [report.run_id])
    reasons = dq_summary.quarantine_reasons(quarantine)
    assert reasons.to_dict("records") == [{"reason": "unknown_category:workday", "rows": 2}]
    daily = warehouse.read_series("daily_series", "fixture")
    fig = dq_summary.plot_coverage(daily, "30min")
    assert fig.data[0].y.tolist() == [6]
    (expected,) = fig.layout.shapes
    assert expected.y0 == expected.y1 == 48 and fig.layout.annotations[0].text == "expected 48"
    hourly = dq_summary.plot_coverage(daily, "1h")
    assert hourly.layout.shapes[0].y0 == 24


def test_gap_table_counts_each_kind_of_step():
    view = pd.DataFrame({"y": [1.0, 2.0, np.nan, np.nan, 5.0, 6.0],
                         "filled": [False, True, False, False, False, True]})
    assert dq_summary.gap_table(view).to_dict("records") == [
        {"steps on the grid": 6, "observed": 2, "interpolated (short gaps)": 2, "missing (long gaps)": 2}]


def test_notebook_setup_and_provenance(clean_env, tmp_path):
    settings = setup(series_id="x", upstream=None, product=None, warehouse_path=None)
    assert settings.series_id == "x"
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"run_id": "r1", "rows_loaded": 5, "rows_quarantined": 1}))
    table = provenance_table(settings, ingest_report=report)
    assert table.set_index("item")["value"]["ingest run"] == "r1 (5 rows loaded, 1 quarantined)"
    items = table.set_index("item")["value"]
    assert len(items["data SHA-256"]) == 64 and items["param: series_id"] == "x"
    assert isinstance(table, pd.DataFrame)


def test_provenance_is_folded_under_a_one_line_summary(clean_env):
    from helpers.publish.notebook import provenance

    settings = setup(series_id="x", upstream=None, product=None, warehouse_path=None)
    folded = provenance(settings, data={"experiment": "e1", "experiment data SHA-256": "c0ffee" * 10})
    assert folded.summary.startswith("Run ") and "data c0ffeec0ffee:" in folded.summary
    page = folded._repr_html_()
    assert page.startswith("<details><summary>Run ") and "<td>e1</td>" in page and "param: series_id" in page
    assert repr(folded).splitlines()[0] == folded.summary
