"""The pipeline's function tasks (helpers.app.tasks), called with the arguments Ploomber passes,
and the experiment grid."""

from __future__ import annotations

import hashlib
import html
import json
import re

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

from helpers.ab import calibration as abcalibration
from helpers.app import tasks
from helpers.core.formatting import percent
from helpers.core.paths import project_root
from helpers.core.settings import ConfigError, load_settings
from helpers.data.series import load_series
from helpers.forecast import comparison as cmp
from helpers.forecast.artifact import SCHEMA_VERSION, load_artifact
from helpers.warehouse import Warehouse
from tests.ab.builders import SPEC, file_rows

#: Half-hourly demand by weekday, Monday first: a series only a weekly model forecasts well.
WEEKDAY_LEVEL = (4.0, 4.5, 5.0, 5.5, 6.0, 2.0, 1.5)
DAYS = 84


def _weekly_file(path, days=DAYS):
    ds = pd.date_range("2014-01-06", periods=48 * days, freq="30min")  # a Monday
    rng = np.random.default_rng(0)
    demand = np.take(WEEKDAY_LEVEL, ds.dayofweek) + rng.normal(0, 0.05, len(ds))
    pd.DataFrame({"timestamp": ds.strftime("%Y-%m-%d %H:%M:%S"), "demand": demand.round(4),
                  "temperature": 15.0, "workday": (ds.dayofweek < 5).astype(int)}).to_csv(path, index=False)
    return path


@pytest.fixture
def ingested(tmp_path, clean_env, monkeypatch):
    """The weekly file ingested by ``ingest_task`` into a fresh warehouse; its report."""
    source = _weekly_file(tmp_path / "weekly.csv")
    for key, value in {"SOURCE_FILE": source, "SERIES_ID": "weekly", "WAREHOUSE_PATH": tmp_path / "wh.duckdb",
                       "PRODUCTS": tmp_path / "products", "REPORTS": tmp_path / "reports"}.items():
        monkeypatch.setenv(f"HELPERS_{key}", str(value))
    report = tmp_path / "products" / "ingest" / "report.json"
    tasks.ingest_task(report, {"source_file": str(source)}, series_id="weekly", source_file=str(source),
                      timestamp_col="timestamp", target_col="demand", temperature_col="temperature",
                      workday_col="workday", freq="30min", target_min="0", target_max="",
                      warehouse_backend="duckdb", warehouse_path=str(tmp_path / "wh.duckdb"))
    return source, json.loads(report.read_text())


def test_ingest_task_loads_the_file_and_writes_its_report(ingested):
    source, report = ingested
    assert (report["rows_read"], report["rows_loaded"], report["rows_quarantined"]) == (48 * DAYS, 48 * DAYS, 0)
    with Warehouse.from_settings(load_settings(), read_only=True) as warehouse:
        daily = load_series(warehouse, "weekly", "daily")
    assert len(daily) == DAYS and daily["ds"].iloc[0] == pd.Timestamp("2014-01-06")
    # a day's total is 48 half-hours at its weekday's level
    np.testing.assert_allclose(daily["y"].iloc[:7], 48 * np.array(WEEKDAY_LEVEL), rtol=0.01)


@pytest.fixture
def selection(ingested, tmp_path):
    """The daily comparison of a few fast models on the weekly series, as the notebook writes it."""
    with Warehouse.from_settings(load_settings(), read_only=True) as warehouse:
        frame = cmp.prepare_frame(load_series(warehouse, "weekly", "daily"))
    config = cmp.ComparisonConfig.parse("daily", 7, 4, 28, "naive,seasonal_naive,window_average,ses", 14)
    return cmp.write_selection(cmp.run_comparison(frame, config), tmp_path / "products" / "model" / "selection.json")


def _fit_final(product, selection_path, tmp_path):
    tasks.fit_final_task(product, {"model_comparison": {"nb": "unused.ipynb", "selection": str(selection_path)}},
                         series_id="weekly", warehouse_backend="duckdb", warehouse_path=str(tmp_path / "wh.duckdb"),
                         max_fill_steps="4", profile="test")


def test_fit_final_task_writes_the_selected_model_s_artifact(ingested, selection, tmp_path):
    source, _ = ingested
    product = tmp_path / "products" / "model" / "forecast_artifact.json"
    _fit_final(product, selection, tmp_path)
    artifact = load_artifact(product)  # the validating load accepts it
    record = json.loads(selection.read_text())

    assert artifact["schema_version"] == SCHEMA_VERSION and artifact["series_id"] == "weekly"
    assert artifact["frequency"] == "1D"
    assert (artifact["training_start"], artifact["training_end"]) == ("2014-01-06T00:00:00", "2014-03-30T00:00:00")
    assert artifact["data_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    # the weekly pattern: seasonal naive wins the selection folds
    assert artifact["selected_model"] == record["selected"] == "seasonal_naive"
    assert set(artifact["models"]) == {"seasonal_naive", *record["members"], "ensemble"}
    assert artifact["models"]["ensemble"]["members"] == record["members"]

    with Warehouse.from_settings(load_settings(), read_only=True) as warehouse:
        last_week = load_series(warehouse, "weekly", "daily")["y"].iloc[-7:].to_numpy()
    selected = artifact["models"]["seasonal_naive"]
    # 14 days from the day after the data, the last week repeated twice
    assert selected["forecast"]["ds"] == [d.isoformat() for d in pd.date_range("2014-03-31", periods=14)]
    np.testing.assert_allclose(selected["forecast"]["mean"], np.tile(last_week, 2))
    # calibration rescales bands about the mean: the ensemble's mean is its members' mean
    members = np.array([artifact["models"][m]["forecast"]["mean"] for m in record["members"]])
    np.testing.assert_allclose(artifact["models"]["ensemble"]["forecast"]["mean"], members.mean(axis=0))
    for name, model in artifact["models"].items():
        path = pd.DataFrame(model["forecast"]).drop(columns="ds")
        assert (path["lo-95"] <= path["lo-80"]).all() and (path["lo-80"] <= path["mean"]).all(), name
        assert (path["mean"] <= path["hi-80"]).all() and (path["hi-80"] <= path["hi-95"]).all(), name
        assert model["cv"] == record["metrics"][name]
        assert model["calibration"] == record["calibration"][name]

    assert artifact["interval_calibration"]["learnt_on"] == "every backtest fold"
    assert artifact["interval_calibration"]["selection_cutoffs"] == record["selection_cutoffs"]
    assert artifact["evaluation_cutoffs"] == record["evaluation_cutoffs"]
    assert artifact["parameters"]["series_id"] == "weekly" and artifact["parameters"]["profile"] == "test"
    assert artifact["parameters"]["comparison"] == record["config"]


@pytest.mark.parametrize("drop, message", [
    (None, "the selection record has no interval calibration; run the model comparison again"),
    ("ensemble", r"no interval calibration for \['ensemble'\]; run the model comparison again"),
])
def test_fit_final_task_without_a_calibration_writes_nothing(ingested, selection, tmp_path, drop, message):
    record = json.loads(selection.read_text())
    record["calibration"] = {k: v for k, v in record["calibration"].items() if k != drop} if drop else {}
    selection.write_text(json.dumps(record))
    product = tmp_path / "products" / "model" / "forecast_artifact.json"
    with pytest.raises(ValueError, match=message):
        _fit_final(product, selection, tmp_path)
    assert not product.exists()


def test_experiments_task_generates_the_configured_experiments_and_loads_the_upload(tmp_path, clean_env):
    upload = tmp_path / "upload.csv"
    file_rows().to_csv(upload, index=False)
    product = tmp_path / "experiments.json"
    tasks.experiments_task(product, upstream={}, ab_experiments=yaml.safe_dump(SPEC), ab_seed="1", ab_scale="1",
                           ab_source_file=str(upload), ab_plan_file="", warehouse_backend="duckdb",
                           warehouse_path=str(tmp_path / "wh.duckdb"))
    generated, uploaded = json.loads(product.read_text())
    assert generated["experiments"] == ["demo"] and generated["rows_quarantined"] == 0
    assert uploaded["experiments"] == ["e1"] and uploaded["source"] == str(upload)
    assert uploaded["rows_read"] == len(file_rows()) == uploaded["rows_loaded"] + uploaded["rows_quarantined"]
    with Warehouse.open("duckdb", tmp_path / "wh.duckdb", read_only=True) as warehouse:
        assert warehouse.table_counts()["ab_users"] == generated["rows_loaded"] + uploaded["rows_loaded"]


CALIBRATION_SETTINGS = {"ab_calibration_sims": "100", "ab_seed": "3", "ab_rope": "0.002", "ab_mde": "0.1",
                        "ab_alpha": "0.05", "ab_power": "0.8"}


def test_calibration_task_writes_the_table_with_its_settings_and_its_check_reads_it(tmp_path, clean_env):
    product = tmp_path / "products" / "ab" / "calibration.json"
    tasks.calibration_task(product, **CALIBRATION_SETTINGS)
    record = json.loads(product.read_text())
    assert record["parameters"] == {"sims": 100, "seed": 3, "rope": 0.002, "mde": 0.1, "alpha": 0.05, "power": 0.8}
    assert [row["check"] for row in record["table"]] == [
        "A/A false positives of the decision rule (ROPE 0.002)", "A/A false positives of the decision rule (ROPE 0.0)",
        "95% HDI covers the true lift", "SPRT type I error (no lift)", "SPRT type II error (lift = MDE)",
        "mSPRT type I error (no lift, checked daily)"]
    tasks.check_calibration(product)

    product.write_text(product.read_text()[:300])  # cut short, as by a full disk
    with pytest.raises(tasks.ProductError, match=re.escape(f"{product}: not a readable A/B calibration table (not "
                                                           "JSON")) as caught:
        tasks.check_calibration(product)
    assert str(caught.value).endswith("; `make run` makes it again") and caught.value.path == product


def test_calibration_task_refuses_a_bad_setting_naming_it(tmp_path, clean_env):
    product = tmp_path / "calibration.json"
    with pytest.raises(ConfigError, match=re.escape("ab_calibration_sims must be at least 100 (set ab_calibration_sims "
                                                    "in env.yaml or HELPERS_AB_CALIBRATION_SIMS), got '10'")):
        tasks.calibration_task(product, **{**CALIBRATION_SETTINGS, "ab_calibration_sims": "10"})
    assert not product.exists()


def test_every_report_reads_the_one_calibration_task_s_product():
    """pipeline.yaml: the task's product is where a notebook outside the pipeline looks for it, it is
    made from the settings the table depends on, and every A/B notebook and the reports wait for it."""
    spec = {task["name"]: task for task in yaml.safe_load((project_root() / "pipeline.yaml").read_text())["tasks"]}
    calibration = spec["calibration"]
    assert calibration["source"] == "helpers.app.tasks.calibration_task"
    assert calibration["product"] == "{{products}}/" + abcalibration.PRODUCT.as_posix()
    assert calibration["on_finish"] == "helpers.app.tasks.check_calibration"
    assert set(calibration["params"]) == set(abcalibration.SETTING_OF.values())
    assert "calibration" in spec["bayesian_ab-[[experiment_id]]"]["upstream"] and "calibration" in spec["reports"]["upstream"]
    # the notebook compares the table's settings with its own: it gets every one of them
    assert set(abcalibration.SETTING_OF.values()) <= set(spec["bayesian_ab-[[experiment_id]]"]["params"])


@pytest.mark.slow  # one notebook run: 17 s alone on a busy machine (first imports), 5 s after other tests
def test_the_report_shows_the_calibration_task_s_table(tmp_path):
    """The bayesian_ab notebook executed as the pipeline executes it (ploomber-engine, its upstream
    injected) on the session's test-profile warehouse (conftest.py): its last cell is the task's table."""
    from ploomber_engine import execute_notebook

    settings = load_settings()
    product = tmp_path / abcalibration.PRODUCT
    tasks.calibration_task(product, **{**CALIBRATION_SETTINGS, "ab_seed": str(settings.ab_seed)})
    loads = tmp_path / "experiments.json"
    loads.write_text("[]")
    out = tmp_path / "bayesian_ab.ipynb"
    execute_notebook(project_root() / "notebooks" / "bayesian_ab.ipynb", out, progress_bar=False,
                     parameters={"upstream": {"experiments": str(loads), "calibration": str(product)},
                                 "ab_calibration_sims": 100})
    [cell] = [c for c in nbformat.read(out, as_version=4).cells if "show_calibration" in c.source]
    [shown] = cell.outputs
    table = abcalibration.read_calibration(product, abcalibration.ABConfig.from_settings(
        load_settings(ab_calibration_sims=100)))
    assert shown["output_type"] == "execute_result"
    page = html.unescape(shown["data"]["text/html"])  # the table for people (helpers.publish.tables)
    for row in table.to_dict("records"):
        assert f">{row['check']}<" in page and f">{percent(row['observed'])}<" in page, row


def test_pipeline_ids_include_the_uploaded_experiments(tmp_path, clean_env, monkeypatch):
    upload = tmp_path / "upload.csv"
    file_rows().to_csv(upload, index=False)
    monkeypatch.setenv("HELPERS_AB_SOURCE_FILE", str(upload))
    assert tasks.experiment_ids() == ["checkout_flow", "homepage_aa", "pricing_page", "banner_srm", "e1"]


def test_pipeline_ids_without_an_upload_are_the_configured_ones(clean_env):
    assert tasks.experiment_ids() == ["checkout_flow", "homepage_aa", "pricing_page", "banner_srm"]


def test_notebooks_upstream_by_task_name_single_and_grid():
    upstream = {"eda": {"nb": "products/eda.ipynb"},
                "bayesian_ab-*": {"bayesian_ab-checkout_flow": {"nb": "products/bayesian_ab-checkout_flow-0.ipynb"},
                                  "bayesian_ab-banner_srm": {"nb": "products/bayesian_ab-banner_srm-1.ipynb"}}}
    assert {name: str(path) for name, path in tasks._notebooks(upstream).items()} == {
        "eda": "products/eda.ipynb", "bayesian_ab-checkout_flow": "products/bayesian_ab-checkout_flow-0.ipynb",
        "bayesian_ab-banner_srm": "products/bayesian_ab-banner_srm-1.ipynb"}


def _executed(path, title):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {title}"),
                                               nbformat.v4.new_code_cell("1 + 1")])
    notebook.cells[1].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    nbformat.write(notebook, path)
    return path


def test_render_task_names_pages_after_tasks_and_stamps_them(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)  # the nbconvert path, with or without quarto
    upstream = {"eda": {"nb": _executed(tmp_path / "eda.ipynb", "Exploration")},
                "bayesian_ab-*": {"bayesian_ab-demo": {"nb": _executed(tmp_path / "bayesian_ab-demo-0.ipynb", "Demo")}}}
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n")
    record = tmp_path / "products" / "reports.json"
    tasks.render_task(record, upstream, reports=str(tmp_path / "reports"), source_file=str(data),
                      run_parameters=json.dumps({"series_id": "s"}),
                      resources_={"problem_statement": "docs/problem_statement.md"})
    index = tmp_path / "reports" / "index.html"
    assert (tmp_path / "reports").is_symlink() and json.loads(record.read_text())["folder"] == str(
        (tmp_path / "reports").resolve())
    tasks.check_reports(record)
    body = index.read_text().split("</nav>", 1)[1]  # after the site's navigation
    links = re.findall(r'href="([^"#]+)"', body)
    assert links == ["problem_statement.html", "eda.html", "bayesian_ab-demo.html"]  # no product, no finding
    assert "Monitoring of the served forecast (not published yet: `make operate` makes it)" in body
    assert "No operating cycle has run yet" in body
    digest = hashlib.sha256(b"a\n1\n").hexdigest()
    for page in links:
        text = (tmp_path / "reports" / page).read_text()
        assert 'class="run-stamp"' in text and digest[:12] in text, page
        assert text.count('aria-current="page"') == 1 and f'href="{page}" class="current"' in text, page

    # once a cycle has published the monitoring site beside the reports, the link resolves from the dated folder
    (tmp_path / "monitoring").mkdir()
    (tmp_path / "monitoring" / "index.html").write_text("<html></html>")
    tasks.render_task(record, upstream, reports=str(tmp_path / "reports"), source_file=str(data),
                      run_parameters=json.dumps({"series_id": "s"}),
                      resources_={"problem_statement": "docs/problem_statement.md"})
    text = index.read_text()
    assert '<a href="../monitoring/index.html">Monitoring of the served forecast</a>' in text
    assert "not published yet" not in text
    assert (index.resolve().parent / "../monitoring/index.html").resolve() == (tmp_path / "monitoring" / "index.html")


def test_a_selection_without_per_fold_metrics_fails_its_check(tmp_path):
    """Selections written before the tracking store logged per-fold metrics are made again by the
    next build (the pipeline removes a product that fails its check)."""
    config = cmp.config_dict(cmp.ComparisonConfig.parse("daily", 7, 4, 28, "naive", 14))
    notebook = tmp_path / "model_comparison.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    selection = tmp_path / "selection.json"
    selection.write_text(json.dumps({"config": config, "selected": "naive", "folds": []}))
    tasks.check_comparison({"nb": notebook, "selection": selection})
    selection.write_text(json.dumps({"config": config, "selected": "naive"}))
    with pytest.raises(tasks.ProductError, match="a model selection without per-fold metrics .* `make run` makes it"):
        tasks.check_comparison({"nb": notebook, "selection": selection})
