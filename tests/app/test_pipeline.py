"""The whole pipeline on the fast profile: builds, is incremental, renders reports."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from helpers.core.settings import load_settings
from helpers.app.pipeline import build, main
from helpers.warehouse import Warehouse
from tests.support import DQ


def side_ingests(warehouse: Path, source: Path, count: int = 3, pause: float = 5.0) -> subprocess.Popen:
    """Another person's ingests of another series into the same warehouse, ``count`` of them
    ``pause`` seconds apart, started beside the build (a shell loop, no thread in this process):
    each must wait its turn and load, and the build must succeed beside them. Prints each exit status."""
    ingest = shlex.join([sys.executable, "-m", "helpers.data.ingest", "--file", str(source), "--series-id", "side",
                         "--warehouse", str(warehouse)])
    loop = f"for i in $(seq {count}); do {ingest} > /dev/null; echo \"exit $?\"; sleep {pause}; done"
    return subprocess.Popen(["bash", "-c", loop], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    settings = load_settings("test", products=str(out / "products"), reports=str(out / "reports"),
                             warehouse_path=str(out / "warehouse.duckdb"))
    with side_ingests(settings.warehouse_path, DQ / "clean.csv") as side:
        first = build(settings)
        out, err = side.communicate(timeout=300)
    second = build(settings)
    return settings, first, second, (out.split("\n")[:-1], err)


@pytest.mark.slow
def test_ingests_during_a_build_wait_their_turn_and_both_succeed(built):
    settings, first, _, (statuses, errors) = built
    assert first["ran"].all()
    assert statuses == ["exit 0"] * 3, errors
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        assert len(warehouse.read_series("raw_series", "side")) == 8


@pytest.mark.slow
def test_every_task_runs_then_nothing_runs(built):
    settings, first, second, _ = built
    assert first["ran"].all(), first
    assert not second["ran"].any(), second
    experiments = {f"bayesian_ab-{name}" for name in settings.ab_experiments}
    assert len(experiments) >= 2
    assert set(first["task"]) == {"ingest", "data_quality", "eda", "hypothesis_tests", "model_comparison",
                                  "fit_final", "experiments", "reports"} | experiments


@pytest.mark.slow
def test_reports_index_links_every_page(built):
    settings, *_ = built
    index = (settings.reports / "index.html").read_text()
    links = re.findall(r'href="([^"#]+)"', index)
    assert links == ["problem_statement.html", "data_quality.html", "eda.html", "hypothesis_tests.html",
                     "model_comparison.html", *(f"bayesian_ab-{name}.html" for name in settings.ab_experiments)]
    for link in links:
        assert (settings.reports / link).exists()
    page = (settings.reports / "data_quality.html").read_text()
    assert "Data quality of the latest ingest" in page
    assert "plotly" in page.lower()  # the figure is embedded and interactive
    for link in ["index.html", *links]:  # every page: the run's provenance, top and bottom
        page = (settings.reports / link).read_text()
        assert 'class="run-stamp"' in page and 'id="run-provenance"' in page, link
        assert "Traceback (most recent call last)" not in page, link


@pytest.mark.slow
def test_reports_open_in_a_browser_with_live_figures(built, tmp_path):
    """Headless Chromium: a screenshot of the index, and plotly draws its figures with no network."""
    from tests.support import chromium

    settings, *_ = built
    shot = tmp_path / "index.png"
    chromium((settings.reports / "index.html").as_uri(), tmp_path / "profile-a", f"--screenshot={shot}",
             "--window-size=1100,900")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    dom = chromium((settings.reports / "eda.html").as_uri(), tmp_path / "profile-b", "--dump-dom",
                   "--virtual-time-budget=10000")
    assert dom.count('class="main-svg"') >= 2  # plotly.js ran and drew figures (2 svg layers per figure)


@pytest.mark.slow
def test_executed_notebook_has_no_errors_or_warnings(built):
    settings, *_ = built
    executed = sorted(settings.products.rglob("*.ipynb"))
    assert len(executed) == 4 + len(settings.ab_experiments)  # four series notebooks, one per experiment
    for path in executed:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                assert output["output_type"] != "error"
                assert not (output["output_type"] == "stream" and output["name"] == "stderr"), output["text"]
                text = output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
                assert "Warning" not in text and "Traceback" not in text, (path.name, text[:500])


@pytest.mark.slow
def test_hypothesis_report_shows_registry_hash_and_adjusted_p_values(built):
    from helpers.analysis.hypotheses import registry_hash
    from helpers.core.paths import project_root

    settings, *_ = built
    page = (settings.reports / "hypothesis_tests.html").read_text()
    assert registry_hash(project_root() / "hypotheses.yaml") in page
    assert "p_adjusted" in page and "H7_correlation" in page


@pytest.mark.slow
def test_artifact_matches_the_report(built):
    """The served numbers are the report's numbers: same selection, same CV metrics."""
    from helpers.forecast.artifact import load_artifact
    from helpers.forecast.comparison import read_selection

    settings, *_ = built
    payload = load_artifact(settings.products / "model" / "forecast_artifact.json")
    _, record = read_selection(settings.products / "model" / "selection.json")
    assert payload["selected_model"] == record["selected"]
    for name, model in payload["models"].items():
        assert model["cv"] == record["metrics"][name]
        assert len(model["forecast"]["ds"]) == settings.max_horizon
    page = (settings.reports / "model_comparison.html").read_text()
    assert f"{record['metrics'][record['selected']]['rmse']:.3f}" in page


@pytest.mark.slow
def test_a_truncated_artifact_is_rebuilt_by_the_next_build(built, capsys):
    """Ploomber trusts its records, not the file: the build checks the products it finds first."""
    from helpers.forecast.artifact import ArtifactError, load_artifact

    settings, *_ = built
    path = settings.products / "model" / "forecast_artifact.json"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match="`make run`"):
        load_artifact(path)
    table = build(settings)
    assert set(table.loc[table["ran"], "task"]) == {"fit_final", "reports"}
    load_artifact(path)
    assert f"{path}: corrupt JSON" in capsys.readouterr().err


@pytest.mark.slow
def test_end_to_end_warehouse_to_served_prediction(built):
    """Ingested rows -> pipeline -> artifact -> POST /predict: the served metrics are the report's."""
    from fastapi.testclient import TestClient

    from helpers.forecast.comparison import read_selection
    from helpers.app.service import create_app
    from helpers.warehouse import Warehouse

    settings, *_ = built
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        last_day = warehouse.read_series("daily_series", settings.series_id)["ts"].max()
    _, record = read_selection(settings.products / "model" / "selection.json")
    with TestClient(create_app(settings.products / "model" / "forecast_artifact.json")) as client:
        window = client.get("/models").json()["forecastable"]
        response = client.post("/predict", json={"start_date": window["start_date"], "end_date": window["end_date"],
                                                 "model": "ensemble"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dates"][0] == (last_day + pd.Timedelta(days=1)).date().isoformat()  # the day after the data
    assert len(body["dates"]) == settings.max_horizon
    assert all(lo <= f <= hi for lo, f, hi in zip(body["confidence_lower"], body["forecast"],
                                                   body["confidence_upper"]))
    assert body["rmse"] == record["metrics"]["ensemble"]["rmse"]
    page = (settings.reports / "model_comparison.html").read_text()
    assert f"{body['rmse']:.3f}" in page


@pytest.mark.slow
def test_refused_source_file_exits_2_with_a_message(tmp_path, clean_env, monkeypatch, capsys):
    monkeypatch.setenv("HELPERS_PROFILE", "test")
    monkeypatch.setenv("HELPERS_SOURCE_FILE", str(DQ / "missing_column.csv"))
    monkeypatch.setenv("HELPERS_PRODUCTS", str(tmp_path / "products"))
    monkeypatch.setenv("HELPERS_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("HELPERS_WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    assert main(["build"]) == 2  # refused input, as `python -m helpers.data.ingest` says it
    assert "missing required column 'demand'" in capsys.readouterr().err


def test_bad_profile_exits_2(clean_env, capsys):
    assert main(["build", "--profile", "nope"]) == 2
    assert "unknown profile" in capsys.readouterr().err


def test_failure_summary_prefers_the_projects_error_lines():
    from helpers.app.pipeline import failure_summary

    text = "=== DAG build failed ===\nhelpers.data.quality.DataQualityError: f.csv: missing\nTaskBuildError: x"
    assert failure_summary(RuntimeError(text)) == "helpers.data.quality.DataQualityError: f.csv: missing"
    assert failure_summary(RuntimeError("===\nsomething else broke\nmore")) == "something else broke"
    assert failure_summary(RuntimeError("")) == "RuntimeError"
