"""The whole pipeline on the fast profile: builds, is incremental, renders reports."""

from __future__ import annotations

import re

import nbformat
import pytest

from helpers.config import load_settings
from helpers.pipeline import build, main
from tests.support import DQ


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    settings = load_settings("test", products=str(out / "products"), reports=str(out / "reports"),
                             warehouse_path=str(out / "warehouse.duckdb"))
    first = build(settings)
    second = build(settings)
    return settings, first, second


@pytest.mark.slow
def test_every_task_runs_then_nothing_runs(built):
    _, first, second = built
    assert first["ran"].all(), first
    assert not second["ran"].any(), second
    assert set(first["task"]) == {"ingest", "data_quality", "reports"}


@pytest.mark.slow
def test_reports_index_links_every_page(built):
    settings, _, _ = built
    index = (settings.reports / "index.html").read_text()
    links = re.findall(r'href="([^"]+)"', index)
    assert links == ["data_quality.html"]
    page = (settings.reports / "data_quality.html").read_text()
    assert "Data quality of the latest ingest" in page
    assert "plotly" in page.lower()  # the figure is embedded and interactive


@pytest.mark.slow
def test_executed_notebook_has_no_errors_or_warnings(built):
    settings, _, _ = built
    notebook = nbformat.read(settings.products / "data_quality.ipynb", as_version=4)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error"
            assert not (output["output_type"] == "stream" and output["name"] == "stderr"), output["text"]


@pytest.mark.slow
def test_failed_ingest_exits_non_zero_with_a_message(tmp_path, clean_env, monkeypatch, capsys):
    monkeypatch.setenv("HELPERS_PROFILE", "test")
    monkeypatch.setenv("HELPERS_SOURCE_FILE", str(DQ / "missing_column.csv"))
    monkeypatch.setenv("HELPERS_PRODUCTS", str(tmp_path / "products"))
    monkeypatch.setenv("HELPERS_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("HELPERS_WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    assert main(["build"]) == 1
    assert "missing required column 'demand'" in capsys.readouterr().err


def test_bad_profile_exits_2(clean_env, capsys):
    assert main(["build", "--profile", "nope"]) == 2
    assert "unknown profile" in capsys.readouterr().err


def test_failure_summary_prefers_the_projects_error_lines():
    from helpers.pipeline import failure_summary

    text = "=== DAG build failed ===\nhelpers.quality.DataQualityError: f.csv: missing\nTaskBuildError: x"
    assert failure_summary(RuntimeError(text)) == "helpers.quality.DataQualityError: f.csv: missing"
    assert failure_summary(RuntimeError("===\nsomething else broke\nmore")) == "something else broke"
    assert failure_summary(RuntimeError("")) == "RuntimeError"
