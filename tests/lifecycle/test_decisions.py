"""The record of a retraining decision: its sentence, its warehouse row (DuckDB and Snowflake
through fakesnow), its message to a real SMTP server and webhook receiver, and the page's table."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd
import pytest

from helpers.lifecycle import decisions
from helpers.lifecycle.decisions import Decision, Score
from helpers.operate import alerts
from helpers.warehouse import TABLE_COLUMNS
from tests.servers import free_port, smtp_server, webhook_server

T0 = datetime(2026, 3, 3, 8, 0)
CHAMPION = Score(1, "ets_calendar", 12.1, 15.5, 0.75, 0.93, (11.0, 13.2))
CHALLENGER = Score(2, "ensemble", 12.3, 15.9, 0.80, 0.96, (12.5, 12.1))
CUTOFFS = ("2026-01-31T00:00:00", "2026-02-14T00:00:00")


def made(outcome: str = "kept", challenger: Score | None = CHALLENGER, at: datetime = T0, **changes) -> Decision:
    champion = CHAMPION if challenger is not None else None
    message = decisions.explain(outcome, champion, challenger, 0.02, len(CUTOFFS), 1,  # type: ignore[arg-type]
                                "the challenger could not be trained (ValueError: no data)")
    return replace(Decision(f"d-{outcome}-{at:%H%M}", "s", "demand-forecast", at, "schedule", (),
                            outcome, 1, None if challenger is None else challenger.version,  # type: ignore[arg-type]
                            champion, challenger, 0.02, 14, CUTOFFS if challenger is not None else (), message),
                   **changes)


def test_the_sentence_is_built_from_the_numbers():
    assert decisions.explain("kept", CHAMPION, CHALLENGER, 0.02, 4, 1) == (
        "kept version 1: challenger version 2 MAE 12.3 vs champion version 1 MAE 12.1 on the same 4 folds; needs 2% "
        "lower (it is 1.7% higher)")
    better = replace(CHALLENGER, mae=11.0)
    assert decisions.explain("promoted", CHAMPION, better, 0.02, 4, 1) == (
        "promoted version 2: challenger version 2 MAE 11 vs champion version 1 MAE 12.1 on the same 4 folds (9.1% "
        "lower; needs 2% lower)")
    assert decisions.explain("kept", CHAMPION, replace(CHALLENGER, mae=12.1), 0.02, 4, 1).endswith("(it is equal)")
    assert decisions.explain("failed", None, None, 0.02, 0, 1, "the challenger could not be trained (X: y).") == (
        "no challenger was promoted: the challenger could not be trained (X: y); version 1 stays champion")
    assert made("kept").change == pytest.approx(12.3 / 12.1 - 1)
    assert made("failed", challenger=None).change is None


def test_a_decision_round_trips_through_the_warehouse(warehouse):
    kept = made("kept")
    failed = made("failed", challenger=None, at=T0 + timedelta(days=7), red_signals=("drift:y_mean",),
                  triggered_by="schedule, red")
    for decision in (failed, kept):  # stored out of order, read oldest first
        assert decisions.record(warehouse, decision, []) == {}
    stored = decisions.read_decisions(warehouse, "s")
    assert tuple(stored.columns) == TABLE_COLUMNS["model_decisions"]
    assert stored["decision_id"].tolist() == [kept.decision_id, failed.decision_id]
    assert decisions.from_row(stored.iloc[0].to_dict()) == replace(
        kept, champion=replace(CHAMPION, fold_mae=()), challenger=replace(CHALLENGER, fold_mae=()))
    assert decisions.from_row(stored.iloc[1].to_dict()) == failed
    row = stored.iloc[1]
    assert (row["folds"], row["red_signals"], row["delivered"]) == (0, "drift:y_mean", "{}")
    assert pd.isna(row["champion_mae"])
    assert decisions.read_decisions(warehouse, "another series").empty


def test_each_decision_is_one_message_and_a_failed_channel_gets_it_later(warehouse):
    port = free_port()  # the SMTP server is down
    with webhook_server() as hook:
        channels = [alerts.EmailChannel("127.0.0.1", port, "a@example.com", ("oncall@example.com",), starttls=False,
                                        timeout=2),
                    alerts.WebhookChannel(hook.url, "TEST_WEBHOOK_URL", timeout=2, retry_pause=0)]
        results = decisions.record(warehouse, made("promoted", replace(CHALLENGER, mae=11.0)), channels,
                                   link="monitoring/monitoring.html")
        assert results["webhook"] == "sent" and results["email"].startswith("e-mail not sent: cannot connect")
        (text,) = [post["text"] for post in hook.payloads]
        assert text.startswith("[retraining] version 2 of demand-forecast is the new champion\n\nPromoted version 2: "
                               "challenger version 2 MAE 11 vs champion version 1 MAE 12.1 on the same 2 folds")
        assert "Triggered by: schedule." in text and "Monitoring: monitoring/monitoring.html" in text
        assert "champion   version 1 (ets_calendar): MAE 12.1, RMSE 15.5, its 80% interval held 75%" in text
        assert "MAE by fold 11, 13.2" in text and "(cutoffs 2026-01-31, 2026-02-14)" in text

        with smtp_server(port) as smtp:  # back up: the e-mail goes, the webhook is not sent twice
            stored = decisions.read_decisions(warehouse, "s")
            assert decisions.resend(warehouse, stored, channels, T0 + timedelta(days=8)) == []  # too old
            assert decisions.resend(warehouse, stored, channels, T0) == [stored["decision_id"].iloc[0]]
            assert smtp.subjects == ["[retraining] version 2 of demand-forecast is the new champion"]
            assert "Both scored on the same 2 rolling-origin folds of 14 days" in smtp.body()
        assert len(hook.payloads) == 1
        again = decisions.read_decisions(warehouse, "s")
        assert json.loads(again["delivered"].iloc[0]) == {"email": "sent", "webhook": "sent"}
        assert decisions.resend(warehouse, again, channels, T0) == []  # nothing left to send


def test_the_page_shows_the_decisions_newest_first_and_the_last_in_a_sentence():
    empty = pd.DataFrame(columns=TABLE_COLUMNS["model_decisions"])
    assert decisions.summary(empty, 7).startswith("**No retraining decision yet.** Each cycle runs the rule")
    assert decisions.decision_table(empty).empty
    rows = [decisions.row(made("kept"), {}), decisions.row(made("failed", challenger=None, at=T0 + timedelta(days=7),
                                                                triggered_by="red", red_signals=("accuracy:ets",)), {})]
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS["model_decisions"])
    table = decisions.decision_table(frame)
    assert table["outcome"].tolist() == ["failed", "kept"]
    assert table.iloc[1][["champion", "challenger", "champion MAE", "challenger MAE", "change", "needed", "folds"]
                         ].tolist() == ["1 (ets_calendar)", "2 (ensemble)", "12.1", "12.3", "+1.7%", "-2%", 2]
    assert table.iloc[0][["trigger", "red then", "champion", "challenger", "change", "folds"]].tolist() == [
        "red", "accuracy:ets", "1", "", "", 0]
    assert table.iloc[1]["red then"] == ""
    text = decisions.summary(frame, 7)
    assert text.startswith("**Last decision (2026-03-10 08:00 UTC, triggered by red)**: No challenger was promoted: "
                           "the challenger could not be trained (ValueError: no data); version 1 stays champion.")
    assert "2 decisions so far (1 kept, 1 failed)" in text
    page = decisions.styled_decision_table(frame).to_html()
    assert made("kept").message in page  # whole, where a plain frame's HTML cuts long text


def test_version_tags_hold_the_decision_and_its_numbers():
    found = decisions.tags(made("kept"))
    assert set(found) == set(decisions.TAG_KEYS) and all(isinstance(v, str) for v in found.values())
    assert (found["decision"], found["decision_trigger"], found["decided_at"]) == ("kept", "schedule",
                                                                                 "2026-03-03T08:00:00")
    assert float(found["decision_challenger_mae"]) == 12.3 and json.loads(found["decision_cutoffs"]) == list(CUTOFFS)
    assert "decision_champion_mae" not in decisions.tags(made("failed", challenger=None))
