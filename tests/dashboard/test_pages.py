"""Every page of the dashboard through Streamlit's AppTest, against a real forecast service
(``python -m helpers.app.service`` on a free port) and a warehouse made by the project's writers;
then each page in headless Chromium, served by one ``streamlit run``."""

from __future__ import annotations

import json
import os
import sys
from datetime import date
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.builders import History, free_port, make_history, running, service

PAGES = Path(__file__).resolve().parents[2] / "src" / "helpers" / "dashboard" / "screens"
APP = PAGES.parent / "app.py"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The history, the service serving its artifact, and the dashboard's settings pointing at both."""
    history = make_history(tmp_path_factory.mktemp("dashboard"))
    with service(history) as url, pytest.MonkeyPatch.context() as patch:
        for key, value in {**history.environment, "HELPERS_DASHBOARD_SERVICE_URL": url}.items():
            patch.setenv(key, value)
        yield history, url


def page(name: str) -> AppTest:
    return AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=30).run()


def texts(at: AppTest, kind: str) -> list[str]:
    return [element.value for element in getattr(at, kind)]


def shown_without_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, texts(at, "error")


def values(encoded) -> list[float]:
    """A plotly JSON array: a list, or a typed array (``dtype``, base64 ``bdata``)."""
    import base64

    import numpy as np

    if isinstance(encoded, dict):
        return np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=encoded["dtype"]).tolist()
    return list(encoded)


def logged(url: str, source: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/predictions?source={source}", timeout=10) as answer:
        return json.load(answer)["predictions"]


def test_forecast_asks_the_service_and_draws_the_forecast_with_both_intervals_and_the_actuals(live):
    _, url = live
    at = page("forecast")
    shown_without_errors(at)
    assert "The service forecasts 2015-01-01 to 2015-01-30" in " ".join(texts(at, "caption"))
    first = at.dataframe[0].value
    assert first["date"].tolist() == [f"2015-01-{d:02d}" for d in range(1, 15)]  # the first visit: the first days
    at.date_input[0].set_value("2015-01-03")
    at.date_input[1].set_value("2015-01-09")
    at.selectbox[0].set_value("holt_winters")
    at.button[0].click().run()
    shown_without_errors(at)
    (chart,) = at.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    names = [trace.get("name") for trace in figure["data"]]
    assert names == [None, "95% interval", None, "80% interval", "forecast (holt_winters)", "actual"]
    assert values(figure["data"][5]["y"])[-3:] == pytest.approx([102.0, 103.0, 104.0])  # daily totals, 2015-01-03..05
    (table,) = at.dataframe
    assert table.value["date"].tolist()[:2] == ["2015-01-03", "2015-01-04"] and len(table.value) == 7
    webapp = logged(url, "webapp")
    assert {(r["model"], r["target_date"]) for r in webapp} >= {("holt_winters", "2015-01-03"),
                                                                 ("holt_winters", "2015-01-09")}


def test_forecast_refuses_a_range_that_ends_before_it_starts(live):
    at = page("forecast")
    at.date_input[0].set_value("2015-01-09")
    at.date_input[1].set_value("2015-01-03")
    at.button[0].click().run()
    assert "is after the last day" in texts(at, "error")[0]


def test_batch_forecasts_the_uploaded_days_keeping_their_covariates(live):
    at = page("batch")
    shown_without_errors(at)
    at.file_uploader[0].upload("days.csv", b"date,temperature\n2015-01-02,20\n2015-01-03,21\n2015-01-10,19\n",
                               "text/csv").run()
    shown_without_errors(at)
    assert "3 rows, 3 distinct days; kept as they are: temperature." in texts(at, "markdown")
    at.button[0].click().run()
    shown_without_errors(at)
    (table,) = at.dataframe
    assert table.value["date"].tolist() == ["2015-01-02", "2015-01-03", "2015-01-10"]
    assert table.value["temperature"].tolist() == ["20", "21", "19"]
    assert table.value["forecast"].tolist() == [101.0, 102.0, 109.0] and set(table.value["model"]) == {"ets"}
    assert at.get("download_button")


@pytest.mark.parametrize("content, message", [
    (b"when,temperature\n2015-01-02,20\n", "no date column: name one date, ds, target_date or day"),
    (b"date\n2015-01-02\n02/01/2015\n", "Row 3 of column 'date' is not a day as YYYY-MM-DD"),
    (b"date\n2016-01-02\n", "outside what the service can forecast, 2015-01-01 to 2015-01-30"),
    (b"", "The file is empty"),
])
def test_a_bad_upload_is_a_sentence_naming_what_to_change(live, content, message):
    at = page("batch")
    at.file_uploader[0].upload("bad.csv", content, "text/csv").run()
    assert not at.exception
    assert message in texts(at, "error")[0]


def test_past_predictions_filter_by_source_with_the_actual_values(live):
    at = page("past_predictions")
    shown_without_errors(at)
    assert at.get("plotly_chart")
    at.radio[0].set_value("scheduled").run()
    shown_without_errors(at)
    table = at.dataframe[0].value
    assert set(table["source"]) == {"scheduled"} and len(table) == 60  # 2 models x 30 days
    known = table[table["target_date"] <= "2015-01-05"]
    assert known["actual"].notna().all() and table[table["target_date"] > "2015-01-05"]["actual"].isna().all()
    assert table.loc[table["target_date"] == "2015-01-02", "actual"].tolist() == pytest.approx([101.0] * 2)
    at.date_input[0].set_value((date(2015, 1, 2), date(2015, 1, 3))).run()
    assert sorted(set(at.dataframe[0].value["target_date"])) == ["2015-01-02", "2015-01-03"]


def test_monitoring_shows_the_statuses_the_alerts_and_the_charts_from_the_warehouse(live):
    at = page("monitoring")
    shown_without_errors(at)
    status = at.dataframe[0].value
    assert {"signal", "status", "message"} <= set(status.columns) and len(status)
    alerts = at.dataframe[1].value
    assert alerts["condition"].tolist() == ["data_quality:invalid_share"]
    assert any("Last decision" in text for text in texts(at, "markdown"))
    assert len(at.get("plotly_chart")) == 13  # every figure of the monitoring page


def test_data_quality_shows_files_runs_errors_and_the_quarantine(live):
    at = page("data_quality")
    shown_without_errors(at)
    files, runs, quarantine = (frame.value for frame in at.dataframe)
    assert files["file"].tolist() == ["missing_value.csv"] and files["rows quarantined"].iloc[0] > 0
    assert len(runs) == 1 and len(quarantine) == files["rows quarantined"].iloc[0]
    assert quarantine["reasons"].str.contains("missing_value").all()
    assert len(at.get("plotly_chart")) == 3


def test_models_shows_what_is_served_the_registry_and_the_decisions(live):
    at = page("models")
    shown_without_errors(at)
    markdown = " ".join(texts(at, "markdown"))
    assert "The service serves **the file" in markdown and "selected model **ets**" in markdown
    assert "No version of" in texts(at, "info")[0]  # nothing registered in this history's store
    assert "Last decision" in markdown and "promoted" in markdown


def test_every_page_says_what_to_do_when_the_service_is_down_or_the_warehouse_missing(live, monkeypatch, tmp_path):
    monkeypatch.setenv("HELPERS_DASHBOARD_SERVICE_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("HELPERS_WAREHOUSE_PATH", str(tmp_path / "none.duckdb"))
    expected = {"forecast": "is not running", "batch": "is not running", "past_predictions": "is not running",
                "monitoring": "There is no warehouse at", "data_quality": "There is no warehouse at",
                "models": "is not running"}
    for name, message in expected.items():
        at = page(name)
        assert not at.exception, (name, [e.value for e in at.exception])
        assert message in " ".join(texts(at, "error")), (name, texts(at, "error"))
        assert "make serve" in " ".join(texts(at, "error")) or "make run" in " ".join(texts(at, "error"))


#: Each page's address under the dashboard and a sentence it must show once drawn.
BROWSED = {"": "Daily forecast of ets", "batch": "The service forecasts 2015-01-01 to 2015-01-30",
           "past_predictions": "Forecasts issued for target days", "monitoring": "signals need attention",
           "data_quality": "Files taken in by the operating cycles", "models": "The service serves the file"}


@pytest.mark.slow
def test_every_page_draws_in_a_browser_without_an_error(live, tmp_path_factory, capsys):
    """``streamlit run`` of the app (as ``make dashboard``), each page opened in headless Chromium
    until drawn: the menu links every page, no error or traceback shows; a screenshot of each is kept."""
    from tests.dashboard.browser import chromium_browser

    history, url = live
    shots = tmp_path_factory.mktemp("dashboard-screenshots", numbered=False)
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1", "--server.port",
               str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with running(command, f"http://127.0.0.1:{port}/_stcore/health", {"HELPERS_DASHBOARD_SERVICE_URL": url}), \
            chromium_browser(tmp_path_factory.mktemp("chromium"), height=1800) as browser:
        for path, sentence in BROWSED.items():
            text = browser.open(f"http://127.0.0.1:{port}/{path}")
            shot = browser.screenshot(shots / f"{path or 'forecast'}.png")
            assert sentence in text, (path, text[:1000])
            for title in ("Forecast", "Batch", "Past predictions", "Monitoring", "Data quality", "Models"):
                assert title in text, (path, title)
            assert "Traceback" not in text, (path, text[:1000])
            assert not browser.evaluate("document.querySelectorAll('[data-testid=\"stException\"], "
                                        "[data-testid=\"stAlertContentError\"]').length"), path
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000, path
    with capsys.disabled():
        print(f"\ndashboard screenshots: {shots}")


def test_the_forecast_is_drawn_without_actuals_when_the_warehouse_is_missing(live, monkeypatch, tmp_path):
    monkeypatch.setenv("HELPERS_WAREHOUSE_PATH", str(tmp_path / "none.duckdb"))
    at = page("forecast")
    assert not at.exception and not at.error
    assert "The actual values are not shown: There is no warehouse at" in at.warning[0].value
    (chart,) = at.get("plotly_chart")
    assert "actual" not in [trace.get("name") for trace in json.loads(chart.proto.spec)["data"]]


def test_an_empty_warehouse_and_log_are_said_on_each_page_not_errors(live, monkeypatch, tmp_path):
    from helpers.warehouse import Warehouse

    Warehouse.open("duckdb", tmp_path / "empty.duckdb").close()
    monkeypatch.setenv("HELPERS_WAREHOUSE_PATH", str(tmp_path / "empty.duckdb"))
    expected = {"monitoring": "No alert has been raised.", "data_quality": "No inbox file has been taken in yet",
                "models": "No version of"}
    for name, message in expected.items():
        at = page(name)
        shown_without_errors(at)
        assert message in " ".join(texts(at, "info")), (name, texts(at, "info"))
    assert "No signal needs attention" in " ".join(texts(page("monitoring"), "markdown"))
    at = page("past_predictions")
    at.radio[0].set_value("webapp")
    at.date_input[0].set_value((date(2016, 1, 1), date(2016, 1, 2))).run()
    assert "No forecast from source webapp for these days yet" in texts(at, "info")[0]


def test_reads_are_kept_for_the_cache_time_and_the_page_still_draws(live, monkeypatch):
    monkeypatch.setenv("HELPERS_DASHBOARD_CACHE_SECONDS", "30")
    for _ in range(2):
        at = page("data_quality")
        shown_without_errors(at)
        assert at.dataframe[0].value["file"].tolist() == ["missing_value.csv"]


def test_a_bad_setting_is_a_sentence_on_the_page(live, monkeypatch):
    monkeypatch.setenv("HELPERS_DASHBOARD_REFRESH_SECONDS", "0")
    at = page("monitoring")
    assert not at.exception
    assert "dashboard_refresh_seconds must be strictly between 0 and 86400" in texts(at, "error")[0]


def test_the_app_lists_every_page_and_opens_on_the_forecast(live):
    _, url = live
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    shown_without_errors(at)
    assert at.title[0].value == "Forecast"
    assert f"Service: {url}" in at.sidebar.caption[0].value
    at.switch_page("screens/models.py").run()
    shown_without_errors(at)
    assert at.title[0].value == "Models"
