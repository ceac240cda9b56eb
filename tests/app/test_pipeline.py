"""The whole pipeline, built once, on a user's own file: an hourly series with no temperature or
work-day flag (the general case; nbval runs the notebooks on the default data). It builds, is
incremental, renders reports, and serves what the reports say."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from helpers.core.formatting import number
from helpers.core.settings import load_settings
from helpers.app.pipeline import build, main
from helpers.warehouse import Warehouse
from tests.support import DQ

#: Two small experiments (an A/A and an A/B), without the PyMC models as the test profile has it
#: (~15 s a notebook): the A/B analysis itself, PyMC included, is tested in tests/ab.
SMALL_EXPERIMENTS = {
    "HELPERS_AB_EXPERIMENTS": '{"small_aa": {"start": "2026-09-14", "days": 7, "users_per_day": 400, '
                              '"control": "control", "variants": {"control": {"rate": 0.1, "order_value": 30}, '
                              '"copy": {"rate": 0.1, "order_value": 30}}}, '
                              '"small_ab": {"start": "2026-09-14", "days": 7, "users_per_day": 400, '
                              '"control": "control", "variants": {"control": {"rate": 0.1, "order_value": 30}, '
                              '"better": {"rate": 0.13, "order_value": 30}}}}',
    "HELPERS_AB_DRAWS": "2000",
}


def side_ingests(warehouse: Path, source: Path, count: int = 3, pause: float = 5.0) -> subprocess.Popen:
    """Another person's ingests of another series into the same warehouse, ``count`` of them
    ``pause`` seconds apart, started beside the build (a shell loop, no thread in this process):
    each must wait its turn and load, and the build must succeed beside them. Prints each exit status."""
    ingest = shlex.join([sys.executable, "-m", "helpers.data.ingest", "--file", str(source), "--series-id", "side",
                         "--warehouse", str(warehouse)])
    loop = f"for i in $(seq {count}); do {ingest} > /dev/null; echo \"exit $?\"; sleep {pause}; done"
    return subprocess.Popen(["bash", "-c", loop], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def own_file(path: Path) -> Path:
    """70 days of an hourly load with a daily and a weekly pattern, columns named by its owner."""
    ds = pd.date_range("2021-03-01", periods=24 * 70, freq="1h")
    hours = np.arange(len(ds))
    rng = np.random.default_rng(7)
    load = 50 + 10 * np.sin(2 * np.pi * hours / 24) + 5 * (ds.dayofweek < 5) + rng.normal(0, 2, len(ds))
    pd.DataFrame({"time": ds, "load_mw": load}).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory, mlflow_store_db):
    out = tmp_path_factory.mktemp("pipeline")
    (out / "mlflow").mkdir()  # the registry's store: its tables made (tests/conftest.py), nothing in it
    shutil.copy(mlflow_store_db, out / "mlflow" / mlflow_store_db.name)
    with pytest.MonkeyPatch.context() as env:  # the build reads the experiments' settings again
        for key, value in SMALL_EXPERIMENTS.items():
            env.setenv(key, value)
        settings = load_settings("test", series_id="site_load", source_file=str(own_file(out / "site_load.parquet")),
                                 timestamp_col="time", target_col="load_mw", temperature_col="", workday_col="",
                                 freq="1h", products=str(out / "products"), reports=str(out / "reports"),
                                 warehouse_path=str(out / "warehouse.duckdb"), mlflow_dir=str(out / "mlflow"))
        with side_ingests(settings.warehouse_path, DQ / "clean.csv") as side:
            first = build(settings)
            statuses, errors = side.communicate(timeout=300)
        second = build(settings)
    return settings, first, second, (statuses.split("\n")[:-1], errors)


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
                                  "fit_final", "register", "experiments", "calibration", "reports"} | experiments


@pytest.mark.slow
def test_a_build_with_nothing_changed_does_not_consult_ploomber(built, monkeypatch):
    """The last build recorded its fingerprint: the same settings and files need no DAG; a changed
    setting or a touched product sends the build through Ploomber again."""
    import dataclasses
    import os

    from helpers.app import pipeline

    settings, first, *_ = built
    assert sorted(pipeline.up_to_date(settings)) == sorted(first["task"])
    other = dataclasses.replace(settings, daily_horizon=settings.daily_horizon + 1)
    product = settings.products / "model" / "forecast_artifact.json"
    stat = product.stat()
    os.utime(product, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        assert pipeline.up_to_date(settings) is None
    finally:
        os.utime(product, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert pipeline.up_to_date(other) is None

    def no_dag(*args, **kwargs):
        raise AssertionError("the build loaded the DAG with nothing changed")

    monkeypatch.setattr(pipeline, "make_dag", no_dag)
    again = build(settings)
    assert not again["ran"].any() and sorted(again["task"]) == sorted(first["task"])
    with pytest.raises(AssertionError, match="loaded the DAG"):
        build(settings, force=True)  # forced: Ploomber, always


@pytest.mark.slow
def test_the_build_registered_version_1_as_champion_in_its_own_store(built):
    """A fresh store: the build logs the comparison's run and registers the artifact as version 1,
    champion; the second build registers nothing; the reports index says so."""
    import json

    from helpers.forecast.artifact import load_artifact
    from helpers.lifecycle.registry import Registry

    settings, *_ = built
    record = json.loads((settings.products / "model" / "registration.json").read_text())
    assert (record["version"], record["aliases"], record["new"]) == (1, ["champion"], True)
    assert record["registry_uri"] == f"sqlite:///{settings.mlflow_dir}/mlflow.db"  # the test's folder, not data/
    registry = Registry.from_settings(settings)
    [version] = registry.versions()  # the second build registered nothing
    payload = load_artifact(settings.products / "model" / "forecast_artifact.json")
    assert version.version == 1 and version.aliases == ("champion",) and version.run_id == record["run_id"]
    assert (version.lineage["series_id"], version.lineage["created_utc"]) == ("site_load", payload["created_utc"])
    assert version.lineage["selected_model"] == payload["selected_model"]
    run = registry.client.get_run(version.run_id)
    assert run.data.params["settings.source_file"] == str(settings.source_file)
    assert any(key.startswith("fold/") for key in run.data.metrics)
    assert ("Model registry: this run registered version 1 of demand-forecast as champion (the first)."
            in (settings.reports / "index.html").read_text())


@pytest.mark.slow
def test_reports_index_links_every_page(built):
    settings, *_ = built
    index = (settings.reports / "index.html").read_text()
    body = index[index.index("<h2>All reports</h2>"):]  # the sidebar links them too (the browser test)
    links = re.findall(r'href="([^"#]+)"', body)
    assert links == ["problem_statement.html", "data_quality.html", "eda.html", "hypothesis_tests.html",
                     "model_comparison.html", *(f"bayesian_ab-{name}.html" for name in settings.ab_experiments)]
    # published by `make operate`, beside the reports: named, without a link until it exists
    assert "Monitoring of the served forecast (not published yet: `make operate` makes it)" in body
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
def test_landing_page_states_each_finding_with_its_number(built):
    """The index's findings carry the products' numbers, each linked to its report."""
    import html
    import json

    settings, *_ = built
    index = html.unescape((settings.reports / "index.html").read_text())
    findings = index[index.index("<h2>Findings</h2>"):index.index("<h2>All reports</h2>")]
    ingest = json.loads((settings.products / "ingest" / "report.json").read_text())
    assert f"read {ingest['rows_read']:,} rows: {ingest['rows_loaded']:,} loaded" in findings
    results = json.loads((settings.products / "hypotheses" / "results.json").read_text())["hypotheses"]
    rejected = [h["id"] for h in results if h["rejected"]]
    assert f"{len(rejected)} of {sum(h['tested'] for h in results)} tested null hypotheses rejected" in findings
    assert all(h in findings for h in rejected) and "Not tested (the series lacks their data)" in findings
    selection = json.loads((settings.products / "model" / "selection.json").read_text())
    metrics = selection["metrics"]
    ratio = metrics[selection["selected"]]["rmse"] / metrics["seasonal_naive"]["rmse"]
    assert f"{selection['selected']} was selected: RMSE " in findings and f"(ratio {ratio:.3g})" in findings
    for name in settings.ab_experiments:
        [path] = (settings.products / "ab").glob(f"verdict-{name}-*.json")  # Ploomber numbers a grid's products
        verdict = json.loads(path.read_text())
        assert f"<h3>A/B experiment {name}</h3>" in findings
        assert all(f"{v['variant']}: " in findings for v in verdict["variants"])
    assert "No operating cycle has run yet" in findings  # a build without a cycle has no monitoring
    for link in re.findall(r'href="([^"#]+)"', findings):
        assert (settings.reports / link).exists(), link
    assert len(re.findall(r"Read the report", findings)) == 3 + len(settings.ab_experiments)  # no cycle: no link


@pytest.mark.slow
def test_every_page_opens_in_a_browser_readable_and_navigable(built, tmp_path):
    """Headless Chromium opens every page the build published (tests/browser.py), a screenshot of
    each kept in test-artifacts/screenshots/reports/: each page's navigation links every page, the
    landing page first, marks the page itself, and every link resolves; plotly drew the figures with
    no network; and no visible text has NaN, None, a dict's repr or a float with an exponent."""
    from tests import browser

    settings, *_ = built
    site = settings.reports.resolve()
    pages = sorted(site.glob("*.html"))
    assert len(pages) == 6 + len(settings.ab_experiments)  # index, problem statement, four analyses, A/B
    doms = browser.open_pages(pages, browser.SCREENSHOTS / "reports", tmp_path)
    for page, dom in doms.items():
        shot = browser.SCREENSHOTS / "reports" / f"{page.stem}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000, page.name
        links = browser.navigation(dom)
        hrefs = [href for href, _ in links]
        assert hrefs[0] == "index.html" and {p.name for p in pages} <= set(hrefs), (page.name, hrefs)
        assert [href for href, current in links if current] == [page.name]
        for href in hrefs:
            assert (page.parent / href).exists(), (page.name, href)
        assert browser.unreadable(browser.visible_text(dom)) == [], page.name
    assert doms[site / "eda.html"].count('class="main-svg"') >= 2  # plotly.js ran and drew figures


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
                if output["output_type"] == "stream" and output["name"] == "stderr":
                    # only the wait for the side ingests' writes (tests/reliability: the wait is the design)
                    lines = output["text"].strip().splitlines()
                    assert all(line.startswith("waiting up to ") for line in lines), output["text"]
                text = output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
                assert "Warning" not in text and "Traceback" not in text, (path.name, text[:500])


@pytest.mark.slow
def test_hypothesis_report_shows_registry_hash_and_adjusted_p_values(built):
    from helpers.analysis.hypotheses import registry_hash
    from helpers.core.paths import project_root

    settings, *_ = built
    page = (settings.reports / "hypothesis_tests.html").read_text()
    assert registry_hash(project_root() / "hypotheses.yaml") in page
    assert "p adjusted (holm)" in page and "H7_correlation" in page


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
    assert f">{number(record['metrics'][record['selected']]['rmse'])}<" in page  # as the table shows it


def test_every_checked_product_of_the_pipeline_names_its_check():
    """The build heals a product that fails its check (tests/reliability/test_healing.py, on a small
    project); here: the real pipeline names a check for each product that has one."""
    import yaml

    from helpers.core.paths import project_root

    checks = {task["name"]: task.get("on_finish") for task in
              yaml.safe_load((project_root() / "pipeline.yaml").read_text())["tasks"]}
    prefix = "helpers.app.tasks."
    assert checks["model_comparison"] == prefix + "check_comparison"
    assert checks["fit_final"] == prefix + "check_artifact" and checks["reports"] == prefix + "check_reports"
    assert checks["register"] == prefix + "check_registration"
    assert checks["calibration"] == prefix + "check_calibration"
    notebooks = ["data_quality", "eda", "hypothesis_tests", "bayesian_ab-[[experiment_id]]"]  # the last: a grid
    for name in notebooks:
        assert checks[name] == prefix + "check_notebook", name


@pytest.mark.slow
def test_covariate_hypotheses_are_not_tested_on_a_series_without_covariates(built):
    settings, *_ = built
    page = (settings.reports / "hypothesis_tests.html").read_text()
    assert "Not tested: the series has no 'degree_days' data" in page
    assert "Not tested: the series has no 'workday' data" in page


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
    assert f">{number(body['rmse'])}<" in page


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


def test_code_is_compared_without_its_layout_comments_or_docstrings():
    from helpers.app.pipeline import source_normal_form

    before = 'def task(a, b):\n    """Old words."""\n    # a note\n    return a+b\n'
    after = 'def task(a, b):\n    """New words, longer."""\n    return (a + b)  # another note\n'
    assert source_normal_form(before) == source_normal_form(after) == "def task(a, b):\n    return a + b"
    assert source_normal_form(before) != source_normal_form(before.replace("a+b", "a-b"))
    assert source_normal_form('def only():\n    """Docs."""\n') == "def only():\n    pass"
    assert source_normal_form("not python (") == "not python (" and source_normal_form(None) is None


def test_a_changed_task_reruns_only_when_its_code_changes(tmp_path, clean_env):
    """The DAG's differ ignores a new comment in a Python task and sees a changed line."""
    from helpers.app.pipeline import make_dag

    dag = make_dag(load_settings("test", products=str(tmp_path / "products")))
    a, b = 'def f(x):\n    return x\n', 'def f(x):\n    # why\n    return x\n'
    assert dag.differ.is_different(a, b, {}, {}, extension="py")[0] is False
    assert dag.differ.is_different(a, a.replace("x\n", "x + 1\n"), {}, {}, extension="py")[0] is True
