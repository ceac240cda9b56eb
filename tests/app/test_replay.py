"""End to end: a planted scenario replayed through the operating cycle reaches the people on call.

A synthetic half-hourly series (a daily and a weekly cycle, temperature, work days) is
replayed week by week after a 14-week history. The second week's file has many bad rows and
demand jumps by half from the third week. The alerts must arrive at a real SMTP server and a
real webhook receiver started here, and every row of every file must be accounted for. The
retraining rule runs in every cycle: its decisions, with their numbers, must be in the
warehouse, in the registry, on the monitoring page and in both channels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.app import replay
from helpers.lifecycle.champion import RECORD
from helpers.lifecycle.tracking import store_stamp
from helpers.operate import monitoring
from helpers.operate.signal_snapshot import SIGNALS_NAME, SignalSnapshotReader
from helpers.warehouse import Warehouse
from tests.servers import smtp_server, webhook_server

HISTORY_DAYS, WEEKS = 98, 4


def planted_series(path: Path) -> tuple[int, int]:
    """Writes the scenario; returns (rows after the history, bad rows planted)."""
    ts = pd.date_range("2021-01-04", periods=48 * (HISTORY_DAYS + 7 * WEEKS), freq="30min")
    rng = np.random.default_rng(5)
    hour = ts.hour + ts.minute / 60
    demand = 100 + 15 * np.sin(2 * np.pi * (hour - 6) / 24) + 10 * (ts.dayofweek < 5) + rng.normal(0, 2, len(ts))
    day = (ts - ts[0]).days
    demand = np.where(day >= HISTORY_DAYS + 14, demand * 1.5, demand)  # the level shift: weeks 3 and 4
    frame = pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "demand": demand.round(3).astype(str),
                          "temperature": (15 + 5 * np.sin(2 * np.pi * hour / 24)).round(2).astype(str),
                          "workday": (ts.dayofweek < 5).astype(int).astype(str)})
    week2 = np.flatnonzero((day >= HISTORY_DAYS + 7) & (day < HISTORY_DAYS + 14))
    bad = week2[::3]  # a third of the week's rows
    frame.loc[bad, "demand"] = "n/a"
    frame.to_csv(path, index=False)
    return int((day >= HISTORY_DAYS).sum()), len(bad)


@pytest.fixture
def on_call(monkeypatch):
    """A real SMTP server and a real webhook receiver on 127.0.0.1, and the settings to reach them."""
    with smtp_server() as inbox, webhook_server() as hook:
        for key, value in {"HELPERS_ALERT_EMAIL_TO": "oncall@example.com",
                           "HELPERS_ALERT_EMAIL_FROM": "demand@example.com", "HELPERS_SMTP_HOST": "127.0.0.1",
                           "HELPERS_SMTP_PORT": str(inbox.port), "HELPERS_SMTP_STARTTLS": "false",
                           "ALERT_WEBHOOK_URL": hook.url}.items():
            monkeypatch.setenv(key, value)
        yield inbox, hook


@pytest.mark.slow
def test_a_replayed_scenario_raises_the_matching_alerts_and_accounts_for_every_row(tmp_path, monkeypatch, on_call):
    inbox, hook = on_call
    source = tmp_path / "planted.csv"
    replayed_rows, bad_rows = planted_series(source)
    for key, value in {"HELPERS_PROFILE": "test", "HELPERS_SERIES_ID": "planted", "HELPERS_DAILY_MIN_TRAIN": "42",
                       "HELPERS_DAILY_MODELS": "naive,seasonal_naive,ses,holt_winters",
                       "HELPERS_MONITOR_WINDOW_DAYS": "7", "HELPERS_RETRAIN_EVERY_DAYS": "7",
                       "HELPERS_RETRAIN_FOLDS": "2"}.items():
        monkeypatch.setenv(key, value)
    until = (pd.Timestamp("2021-01-04") + pd.Timedelta(days=HISTORY_DAYS - 1)).date().isoformat()
    result = replay.replay(source, tmp_path / "replay", train_until=until, step="7D", say=lambda line: None,
                           live=True)

    assert [row["status"] for row in result.cycles] == ["ok"] * WEEKS
    with Warehouse.open("duckdb", tmp_path / "replay" / "warehouse.duckdb", read_only=True) as warehouse:
        files = warehouse.query("select_intake_files", ["planted"])
        raw = warehouse.read_series("raw_series", "planted")
        log = monitoring.forecasts_with_actuals(warehouse, "planted")
        alerts = warehouse.query("alerts_recent", [pd.Timestamp("2000-01-01")])
    # every row accounted for
    assert len(files) == WEEKS and files["rows_read"].sum() == replayed_rows
    assert (files["rows_read"] == files["rows_loaded"] + files["rows_quarantined"]).all()
    assert files["rows_quarantined"].sum() == bad_rows
    assert len(raw) == 48 * HISTORY_DAYS + replayed_rows - bad_rows
    # the bad file is high; the shift shows in the errors
    assert files.sort_values("file_name")["criticality"].tolist()[1] == "high"
    assert log["actual"].notna().sum() > 0
    conditions = set(alerts["condition"])
    assert any(c.startswith("file:") for c in conditions), conditions
    assert any(c.startswith("accuracy:") for c in conditions), conditions
    # ... and reached the people on call, once each
    assert all(recipients == ["oncall@example.com"] for _, recipients, _ in inbox.messages)
    assert any("planted-002" in inbox.body(k) for k in range(len(inbox.messages)))
    assert any("accuracy" in post["text"].lower() for post in hook.payloads)
    texts = [post["text"] for post in hook.payloads]
    assert len(texts) == len(set(texts))
    # the retraining rule: the first cycle decides (no decision yet), each later one by schedule (a
    # week later); each decision recorded, tagged, shown and sent once
    with Warehouse.open("duckdb", tmp_path / "replay" / "warehouse.duckdb", read_only=True) as warehouse:
        decisions = warehouse.query("select_model_decisions", ["planted"])
    assert len(decisions) == WEEKS and set(decisions["outcome"]) <= {"promoted", "kept"}
    assert decisions["decided_at"].iloc[0] == pd.Timestamp(raw["ts"].min() + pd.Timedelta(days=HISTORY_DAYS + 7))
    assert (decisions["folds"] == 2).all() and decisions["challenger_mae"].gt(0).all()
    assert all(json.loads(d) == {"email": "sent", "webhook": "sent"} for d in decisions["delivered"])
    numbers = r" MAE [\d.]+ vs champion version \d+ MAE [\d.]+ on the same 2 folds"
    assert decisions["message"].str.contains(numbers).all()
    retraining = [k for k, subject in enumerate(inbox.subjects) if subject.startswith("[retraining]")]
    assert len(retraining) == len(decisions) == sum(t.startswith("[retraining]") for t in texts)
    assert decisions["message"].iloc[-1][1:] in inbox.body(retraining[-1])
    # the last decision's champion is on record, so the next cycle refits it without asking MLflow
    products = tmp_path / "replay" / "products" / "operate" / "champion"
    record = json.loads((products / RECORD).read_text())
    assert record["stamp"] == json.loads(json.dumps(store_stamp(record["registry_uri"])))
    last = decisions.iloc[-1]
    assert record["version"] == (last["challenger_version"] if last["outcome"] == "promoted" else
                                 last["champion_version"])
    # the last cycle's signals, for the service's GET /metrics: as alerts.json has them
    snapshot = SignalSnapshotReader(tmp_path / "replay" / "forecast_log" / SIGNALS_NAME).read()
    judged = json.loads((tmp_path / "replay" / "products" / "operate" / "alerts.json").read_text())["signals"]
    assert [(s.key, s.status, s.value) for s in snapshot.signals] == [(s["key"], s["status"], s["value"])
                                                                      for s in judged]
    assert any(s.key.startswith("accuracy:") and s.status in ("orange", "red") for s in snapshot.signals)
    assert snapshot.series_id == "planted" and pd.Timestamp(snapshot.as_of) == raw["ts"].max().ceil("1D")  # arrived
    assert snapshot.last_actual == pd.Timestamp(raw["ts"].max().date(), tz="UTC").timestamp()
    site = tmp_path / "replay" / "monitoring"
    assert (site / "index.html").exists() and (site / "monitoring.html").exists()
    page = (site / "monitoring.html").read_text()
    assert "Retraining decisions" in page and decisions["message"].iloc[-1] in page
    assert "planted-002" in (site / "index.html").read_text()
    index = (site / "index.html").read_text()  # the analysis reports, named; no link until `make run` made them
    assert "Analysis reports of the last full run (not published yet: `make run` makes it)" in index
    assert 'href="../reports/index.html"' not in index
    file_page = next((site / "files").glob("*.html")).read_text()  # each file's page: the site's navigation
    assert '<nav class="site-nav"' in file_page and 'href="../monitoring.html"' in file_page
