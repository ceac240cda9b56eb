"""The dashboard's tables, figures and batch checks, on known inputs."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from helpers.dashboard import views
from helpers.dashboard.views import BatchError
from helpers.lifecycle.registry import ModelVersion

WINDOW = ("2015-01-01", "2015-01-30")
ANSWER = {"dates": ["2015-01-01", "2015-01-02"], "forecast": [100.0, 101.0], "confidence_lower": [91.0, 92.0],
          "confidence_upper": [109.0, 110.0], "confidence_lower_80": [95.0, 96.0], "confidence_upper_80": [105.0, 106.0],
          "model_used": "ets", "rmse": 10.0, "mae": 8.0, "last_updated": "2026-01-01T00:00:00"}


def test_a_forecast_answer_becomes_a_table_with_both_intervals_and_a_figure_with_both_bands():
    frame = views.forecast_frame(ANSWER)
    assert list(frame.columns) == list(views.FORECAST_COLUMNS)
    assert frame.iloc[1].tolist()[1:] == [101.0, 96.0, 106.0, 92.0, 110.0]
    figure = views.plot_forecast(frame, pd.DataFrame({"ds": pd.to_datetime(["2014-12-31"]), "actual": [99.0]}), "ets",
                                 unit="MW")
    assert [t.name for t in figure.data] == [None, "95% interval", None, "80% interval", "forecast (ets)", "actual"]
    assert figure.layout.yaxis.title.text == "demand (MW), daily total"
    bare = views.forecast_frame({**ANSWER, "confidence_lower": None, "confidence_upper": None,
                                 "confidence_lower_80": None, "confidence_upper_80": None})
    assert bare["lower_95"].isna().all()
    assert [t.name for t in views.plot_forecast(bare, None, "ets").data] == ["forecast (ets)"]


def test_missing_cells_show_as_a_dash_and_numbers_stay_numbers():
    frame = pd.DataFrame({"day": ["2015-01-01", "2015-01-02"], "actual": [201.26, np.nan], "note": ["a", None],
                          "coverage": [100.0, 71.4]})
    styled = views.with_dashes(frame)
    html = styled.to_html()
    assert "201.3" in html and html.count("–") == 2 and "None" not in html and "nan" not in html
    assert ">100<" in html and ">71.4<" in html  # no trailing zeros
    assert styled.data["actual"].dtype == float


def test_people_tables_show_days_and_rounded_numbers():
    frame = pd.DataFrame({"day": pd.to_datetime(["2015-01-01"]), "value": [1.23456], "n": [3],
                          "at": pd.to_datetime(["2015-01-01 06:30"])})
    assert views.people_table(frame).to_dict("records") == [{"day": "2015-01-01", "value": 1.2, "n": 3,
                                                             "at": "2015-01-01 06:30"}]


def test_a_batch_keeps_its_rows_and_covariates_and_asks_for_runs_of_days():
    batch = views.read_batch("\ufeffDS,temperature\n2015-01-03,20\n2015-01-01,18\n2015-01-02,19\n2015-01-03,20\n"
                             "2015-01-09,25\n".encode(), WINDOW)
    assert batch.date_column == "DS" and batch.covariates == ["temperature"]
    assert batch.days == [date(2015, 1, 1), date(2015, 1, 2), date(2015, 1, 3), date(2015, 1, 9)]
    assert views.day_runs(batch.days) == [(date(2015, 1, 1), date(2015, 1, 3)), (date(2015, 1, 9), date(2015, 1, 9))]
    assert len(batch.rows) == 5 and batch.rows["temperature"].tolist() == ["20", "18", "19", "20", "25"]


@pytest.mark.parametrize("data, message", [
    (b"  \n", "The file is empty"),
    (b"date\n", "has a header but no rows"),
    ("date,x\n2015-01-01,caf\u00e9\n".encode("latin-1"), "not UTF-8 text"),
    (b'date\n"2015-01-01\n', "not a readable CSV"),
    (b"day,x\n2015-01-01,1\n2015-1-2,2\n2015-01-32,3\nsoon,4\n2015-01-05,5\n2015-13-01,6\n2015-01-07,7\n"
     b"x,8\ny,9\nz,10\n", "Rows 4, 5, 7, 9, 10 and 1 more of column 'day' are not a day as YYYY-MM-DD \\(e.g. '2015-01-32'\\)"),
    (b"date\n2015-01-01\n2014-12-31\n", "Row 3 ask for days outside what the service can forecast"),
])
def test_a_batch_that_cannot_be_forecast_says_what_to_change(data, message):
    with pytest.raises(BatchError, match=message):
        views.read_batch(data, WINDOW)


def test_a_batch_has_a_row_limit():
    rows = "\n".join(["date", *["2015-01-01"] * (views.MAX_BATCH_ROWS + 1)]).encode()
    with pytest.raises(BatchError, match="10,001 rows; at most 10,000"):
        views.read_batch(rows, WINDOW)


def test_past_predictions_become_a_table_newest_first_and_a_figure_per_source_and_model():
    row = {"prediction_id": "p", "series_id": "s", "model_version": "v", "fitted_until": "2014-12-31",
           "horizon_step": 1, "lower_80": None, "upper_80": None, "lower_95": 90.0, "upper_95": 110.0}
    payload = {"predictions": [
        {**row, "source": "scheduled", "issued_at": "2015-01-01T06:00:00.000000Z", "model": "ets",
         "target_date": "2015-01-01", "forecast": 100.0, "actual": 98.0},
        {**row, "source": "webapp", "issued_at": "2015-01-01T07:00:00.5Z", "model": "ets",
         "target_date": "2015-01-01", "forecast": 101.0, "actual": 98.0},
        {**row, "source": "webapp", "issued_at": "2015-01-01T08:00:00Z", "model": "ets",
         "target_date": "2015-01-02", "forecast": 102.0, "actual": None}]}
    frame = views.predictions_frame(payload, pd.DataFrame({"ds": pd.to_datetime(["2015-01-01"]), "actual": [98.0]}))
    assert views.predictions_frame(payload)["actual"].isna().all()  # the warehouse could not be read
    table = views.predictions_table(frame)
    assert table[["target_date", "source", "issued_at", "forecast"]].values.tolist() == [
        ["2015-01-02", "webapp", "2015-01-01 08:00", 102.0], ["2015-01-01", "webapp", "2015-01-01 07:00", 101.0],
        ["2015-01-01", "scheduled", "2015-01-01 06:00", 100.0]]
    assert table["actual"].isna().tolist() == [True, False, False] and table["actual"].iloc[1] == 98.0
    figure = views.plot_predictions(frame)
    assert [t.name for t in figure.data] == ["scheduled: ets", "webapp: ets", "actual"]
    assert list(figure.data[1].y) == [101.0, 102.0]


def test_versions_and_served_models_read_for_people():
    versions = [ModelVersion(2, ("challenger",), "r2", {"created_utc": "2026-01-02T10:11:12", "training_start": "2014-01-01",
                                                       "training_end": "2014-12-31T00:00:00", "selected_model": "ets",
                                                       "cv_mae": "8.12345", "decision": "kept", "data_sha256": "a" * 64,
                                                       "git_commit": "b" * 40}),
                ModelVersion(1, (), "r1", {"cv_mae": "not a number"})]
    table = views.versions_table(versions)
    assert table.iloc[0].tolist() == [2, "challenger", "2026-01-02 10:11", "2014-01-01 to 2014-12-31", "ets", 8.123,
                                      "kept", "a" * 12, "b" * 12]
    assert table.iloc[1]["aliases"] == "-" and pd.isna(table.iloc[1]["CV MAE"])
    models = {"served": {"version": 3, "artifact": "models:/demand/3"}, "challenger": {"version": 4},
              "selected_model": "ets", "training_end": "2014-12-31T00:00:00",
              "forecastable": {"start_date": "2015-01-01", "end_date": "2015-01-28"},
              "models": [{"name": "ets", "selected": True, "mae": 8.0, "rmse": 10.0, "members": None,
                          "intervals": {"80": {"achieved": 0.785}, "95": {"achieved": 0.94}}},
                         {"name": "ensemble", "selected": False, "mae": 7.0, "rmse": 9.0, "members": ["ets", "naive"]}]}
    assert views.describe_served(models) == (
        "The service serves **version 3** (the champion), selected model **ets**, trained up to 2014-12-31; it "
        "forecasts 2015-01-01 to 2015-01-28. The challenger is **version 4**.")
    served = views.served_models_table(models)
    assert served.iloc[0].tolist() == ["ets", "yes", 8.0, 10.0, 78.5, 94.0, "-"]
    assert served.iloc[1]["members"] == "ets, naive" and pd.isna(served.iloc[1]["80% coverage (%)"])


def test_statuses_and_alerts_read_for_people():
    from helpers.operate.monitoring import Signal

    signals = [Signal("drift:y_mean", "grey", None, "KS p < 0.01", "not judged"),
               Signal("accuracy:ets", "red", 2.345678, "orange from 1.25", "too far off")]
    styled = views.status_table(signals)
    assert styled.data[["signal", "value"]].values.tolist() == [["accuracy:ets", "2.35"], ["drift:y_mean", "-"]]
    assert "background-color: #ffcdd2" in styled.to_html()
    alerts = pd.DataFrame({"alert_id": ["a"], "condition": ["accuracy:ets"], "severity": ["red"],
                           "opened_at": pd.to_datetime(["2015-01-01 06:00"]), "last_seen_at": pd.to_datetime(["2015-01-02 06:00"]),
                           "cleared_at": [pd.NaT], "message": ["too far off"]})
    assert views.alerts_table(alerts).iloc[0].tolist() == ["accuracy:ets", "red", "2015-01-01 06:00", "2015-01-02 06:00",
                                                           "-", "too far off"]
