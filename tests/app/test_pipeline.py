"""The whole pipeline on the fast profile: builds, is incremental, renders reports."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from helpers.core.settings import load_settings
from helpers.app.pipeline import build, main
from helpers.warehouse import Warehouse
from tests.support import DQ


class SideIngests(threading.Thread):
    """Another person's ingests of another series into the same warehouse, one after another
    (at most ``limit``, ``pause`` seconds apart) while the build runs: each must wait its turn
    and load, and the build must succeed beside them."""

    def __init__(self, warehouse: Path, source: Path, limit: int = 3, pause: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.warehouse, self.source, self.limit, self.pause = warehouse, source, limit, pause
        self.done, self.results = threading.Event(), []

    def run(self) -> None:
        while not self.done.is_set() and len(self.results) < self.limit:
            process = subprocess.run([sys.executable, "-m", "helpers.data.ingest", "--file", str(self.source),
                                      "--series-id", "side", "--warehouse", str(self.warehouse)],
                                     capture_output=True, text=True, timeout=300)
            self.results.append((process.returncode, process.stderr))
            self.done.wait(self.pause)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    settings = load_settings("test", products=str(out / "products"), reports=str(out / "reports"),
                             warehouse_path=str(out / "warehouse.duckdb"))
    side = SideIngests(settings.warehouse_path, DQ / "clean.csv")
    side.start()
    try:
        first = build(settings)
    finally:
        side.done.set()
        side.join(timeout=300)
    second = build(settings)
    return settings, first, second, side.results


@pytest.mark.slow
def test_ingests_during_a_build_wait_their_turn_and_both_succeed(built):
    settings, first, _, side = built
    assert first["ran"].all()
    assert side and all(code == 0 for code, _ in side), side
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        assert len(warehouse.read_series("raw_series", "side")) == 8


@pytest.mark.slow
def test_every_task_runs_then_nothing_runs(built):
    _, first, second, _ = built
    assert first["ran"].all(), first
    assert not second["ran"].any(), second
    experiments = {f"bayesian_ab-{name}" for name in ("checkout_flow", "homepage_aa", "pricing_page", "banner_srm")}
    assert set(first["task"]) == {"ingest", "data_quality", "eda", "hypothesis_tests", "model_comparison",
                                  "fit_final", "experiments", "reports"} | experiments


@pytest.mark.slow
def test_reports_index_links_every_page(built):
    settings, *_ = built
    index = (settings.reports / "index.html").read_text()
    links = re.findall(r'href="([^"#]+)"', index)
    assert links == ["problem_statement.html", "data_quality.html", "eda.html", "hypothesis_tests.html",
                     "model_comparison.html", "bayesian_ab-checkout_flow.html", "bayesian_ab-homepage_aa.html",
                     "bayesian_ab-pricing_page.html", "bayesian_ab-banner_srm.html"]
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
    assert len(executed) == 8  # four series notebooks, four experiments
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


#: One small A/A experiment, lighter sampling: the A/B part of the build is not what the next test is about.
ONE_SMALL_EXPERIMENT = {
    "HELPERS_AB_EXPERIMENTS": '{"small_aa": {"start": "2026-09-14", "days": 7, "users_per_day": 400, '
                              '"control": "control", "variants": {"control": {"rate": 0.1, "order_value": 30}, '
                              '"copy": {"rate": 0.1, "order_value": 30}}}}',
    "HELPERS_AB_PYMC_DRAWS": "100", "HELPERS_AB_PYMC_CHAINS": "1", "HELPERS_AB_DRAWS": "2000",
}


@pytest.mark.slow
def test_pipeline_runs_on_another_series_without_covariates(tmp_path, monkeypatch):
    """An hourly series with no temperature or work-day flag: covariate hypotheses are 'not tested'."""
    for key, value in ONE_SMALL_EXPERIMENT.items():
        monkeypatch.setenv(key, value)
    import numpy as np
    import pandas as pd

    ds = pd.date_range("2021-03-01", periods=24 * 70, freq="1h")
    hours = np.arange(len(ds))
    rng = np.random.default_rng(7)
    load = 50 + 10 * np.sin(2 * np.pi * hours / 24) + 5 * (ds.dayofweek < 5) + rng.normal(0, 2, len(ds))
    source = tmp_path / "site_load.parquet"
    pd.DataFrame({"time": ds, "load_mw": load}).to_parquet(source)
    settings = load_settings("test", series_id="site_load", source_file=str(source), timestamp_col="time",
                             target_col="load_mw", temperature_col="", workday_col="", freq="1h",
                             products=str(tmp_path / "products"), reports=str(tmp_path / "reports"),
                             warehouse_path=str(tmp_path / "warehouse.duckdb"))
    assert build(settings)["ran"].all()
    page = (settings.reports / "hypothesis_tests.html").read_text()
    assert "Not tested: the series has no 'degree_days' data" in page
    assert "Not tested: the series has no 'workday' data" in page
    assert (settings.reports / "bayesian_ab-small_aa.html").exists()
