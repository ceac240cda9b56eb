"""Alerts against a real SMTP server (aiosmtpd) and a real HTTP webhook receiver, both local.

Nothing of the sending code is replaced: the tests read what the servers received.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest
from aiosmtpd.smtp import AuthResult

from helpers.core.settings import ConfigError, Settings, load_settings
from helpers.operate import alerts
from helpers.warehouse import TABLE_COLUMNS, Warehouse
from tests.servers import free_port, smtp_server, webhook_server

T0 = datetime(2026, 3, 3, 8, 0)  # a Tuesday of ISO week 2026-W10 (2 to 8 March)
HOUR = timedelta(hours=1)
SENDER = "alerts@example.com"
RECIPIENTS = ("oncall@example.com", "team@example.com")
ACCURACY = alerts.Condition(
    "accuracy:ets_calendar", "orange", "Accuracy of ets_calendar has degraded",
    "Its MAE over the last 28 days is 1.4 times its cross-validated MAE (orange from 1.25). "
    "Look at the accuracy page and at the files of the last days.", "reports/monitoring.html")
WORSE = replace(ACCURACY, severity="red", message="Its MAE over the last 28 days is 1.9 times its cross-validated "
                                                  "MAE (red from 1.75).")
FILE = alerts.Condition("file:ab12cd", "high", "File demand_2026-03-02.csv was mostly refused",
                        "62% of its rows were invalid (unparseable timestamps); the bad rows are in data/archive/bad.")


def mail(port: int, starttls: bool = False) -> alerts.EmailChannel:
    return alerts.EmailChannel("127.0.0.1", port, SENDER, RECIPIENTS, starttls=starttls, timeout=2)


def webhook(url: str) -> alerts.WebhookChannel:
    return alerts.WebhookChannel(url, "TEST_WEBHOOK_URL", timeout=2, retry_pause=0)


def stored(warehouse: Warehouse, key: str) -> list[dict[str, Any]]:
    rows = warehouse.query("alerts_by_condition", [key]).to_dict("records")
    return [{**row, "delivered": json.loads(row["delivered"])} for row in rows]


@pytest.fixture(scope="module")
def base_settings() -> Settings:
    return replace(load_settings(), alert_email_to=(), alert_email_from=None, smtp_host=None, smtp_user=None,
                   smtp_starttls=False, alert_webhook_url_env="TEST_WEBHOOK_URL", summary_weekday="monday")


@pytest.fixture
def duck(tmp_path):
    with Warehouse.open("duckdb", tmp_path / "warehouse.duckdb") as warehouse:
        yield warehouse


# -- reconcile ------------------------------------------------------------------------------------
def test_an_alert_is_sent_once_while_it_holds_again_when_worse_and_cleared_once(warehouse):
    with smtp_server() as smtp, webhook_server() as hook:
        channels = [mail(smtp.port), webhook(hook.url)]
        first = alerts.reconcile(warehouse, [ACCURACY], T0, channels)
        assert first.opened == (ACCURACY.key,) and first.failures == []
        ((sender, recipients, message),) = smtp.messages
        assert (sender, recipients) == (SENDER, list(RECIPIENTS))
        assert message["Subject"] == "[orange] Accuracy of ets_calendar has degraded"
        assert message["To"] == ", ".join(RECIPIENTS)
        assert ACCURACY.message in smtp.body() and "Report: reports/monitoring.html" in smtp.body()
        assert "open since 2026-03-03 08:00 UTC" in smtp.body()
        (payload,) = hook.payloads
        assert payload["text"].startswith("[orange] Accuracy") and ACCURACY.message in payload["text"]
        (row,) = stored(warehouse, ACCURACY.key)
        assert row["delivered"] == {"email": "sent", "webhook": "sent"} and pd.isna(row["cleared_at"])

        # still orange next cycle (an aware time is taken as UTC): seen, not sent again
        second = alerts.reconcile(warehouse, [ACCURACY], (T0 + HOUR).replace(tzinfo=timezone.utc), channels)
        assert second.updated == (ACCURACY.key,) and second.deliveries == ()
        assert len(smtp.messages) == 1 and len(hook.payloads) == 1
        assert stored(warehouse, ACCURACY.key)[0]["last_seen_at"] == T0 + HOUR

        # red: sent once more and recorded; a second condition gets its own alert
        third = alerts.reconcile(warehouse, [WORSE, FILE], T0 + 2 * HOUR, channels)
        assert third.worsened == (ACCURACY.key,) and third.opened == (FILE.key,)
        assert smtp.subjects[1:] == ["[red, was orange] Accuracy of ets_calendar has degraded",
                                     "[high] File demand_2026-03-02.csv was mostly refused"]
        assert "1.9 times" in smtp.body(1) and FILE.message in hook.payloads[2]["text"]
        assert stored(warehouse, ACCURACY.key)[0]["severity"] == "red"

        # orange again: better is not sent, and the alert keeps its worst severity
        fourth = alerts.reconcile(warehouse, [ACCURACY, FILE], T0 + 3 * HOUR, channels)
        assert fourth.updated == (ACCURACY.key, FILE.key) and fourth.deliveries == ()
        assert len(smtp.messages) == 3 and stored(warehouse, ACCURACY.key)[0]["severity"] == "red"

        # both clear: one short notice each, then silence
        fifth = alerts.reconcile(warehouse, [], T0 + 4 * HOUR, channels)
        assert sorted(fifth.cleared) == sorted([ACCURACY.key, FILE.key]) and fifth.failures == []
        assert sorted(smtp.subjects[3:]) == ["[cleared] Accuracy of ets_calendar has degraded",
                                             "[cleared] File demand_2026-03-02.csv was mostly refused"]
        assert "no longer holds: it was red from 2026-03-03 08:00 to 2026-03-03 12:00 UTC" in "".join(
            smtp.body(i) for i in (3, 4))
        assert all(row["cleared_at"] == T0 + 4 * HOUR for row in stored(warehouse, ACCURACY.key) +
                   stored(warehouse, FILE.key))
        assert alerts.reconcile(warehouse, [], T0 + 5 * HOUR, channels).deliveries == ()
        assert len(smtp.messages) == len(hook.payloads) == 5

        # the condition comes back: a new alert
        again = alerts.reconcile(warehouse, [ACCURACY], T0 + 6 * HOUR, channels)
        assert again.opened == (ACCURACY.key,) and len(stored(warehouse, ACCURACY.key)) == 2
        assert smtp.subjects[-1] == "[orange] Accuracy of ets_calendar has degraded"


def test_a_failed_send_keeps_the_alert_and_a_later_cycle_delivers_it(warehouse):
    port = free_port()  # the SMTP server is down
    with webhook_server() as hook:
        channels = [mail(port), webhook(hook.url)]
        down = alerts.reconcile(warehouse, [ACCURACY, FILE], T0, channels)
        assert down.opened == (ACCURACY.key, FILE.key) and len(hook.payloads) == 2
        first, second = down.failures
        assert f"e-mail not sent: cannot connect to the SMTP server 127.0.0.1:{port}" in first
        assert "check smtp_host and smtp_port" in first
        assert "not tried, the channel failed earlier in this cycle" in second  # no second wait on a dead server
        assert "2 opened" in down.summary() and "2 not delivered" in down.summary()
        (row,) = stored(warehouse, ACCURACY.key)
        assert row["delivered"]["webhook"] == "sent" and row["delivered"]["email"].startswith("e-mail not sent")

        with smtp_server(port) as smtp:  # back up: only what failed is sent again
            up = alerts.reconcile(warehouse, [ACCURACY, FILE], T0 + HOUR, channels)
            assert up.updated == (ACCURACY.key, FILE.key) and up.failures == []
            assert [(d.notice, d.results) for d in up.deliveries] == [("retried", {"email": "sent"})] * 2
            assert sorted(smtp.subjects) == ["[high] File demand_2026-03-02.csv was mostly refused",
                                             "[orange] Accuracy of ets_calendar has degraded"]
            assert len(hook.payloads) == 2
        assert stored(warehouse, ACCURACY.key)[0]["delivered"] == {"email": "sent", "webhook": "sent"}

        # it clears while the server is down: the cleared notice waits for the next cycle
        cleared = alerts.reconcile(warehouse, [FILE], T0 + 2 * HOUR, channels)
        assert cleared.cleared == (ACCURACY.key,) and len(cleared.failures) == 1
        with smtp_server(port) as smtp:
            later = alerts.reconcile(warehouse, [FILE], T0 + 3 * HOUR, channels)
            assert [(d.condition, d.notice) for d in later.deliveries] == [(ACCURACY.key, "retried")]
            assert smtp.subjects == ["[cleared] Accuracy of ets_calendar has degraded"]
        assert stored(warehouse, ACCURACY.key)[0]["delivered"] == {"email": "sent", "webhook": "sent"}


def test_webhook_errors_are_sentences_and_a_5xx_is_tried_once_more(duck):
    with webhook_server() as hook:
        hook.statuses = [500, 500]
        outcome = alerts.reconcile(duck, [ACCURACY], T0, [webhook(hook.url)])
        (failure,) = outcome.failures
        assert "127.0.0.1 answered HTTP 500 (something broke), also when tried again" in failure
        assert "secret-token" not in failure and len(hook.payloads) == 2
        hook.statuses = [503]  # the second try goes through
        later = alerts.reconcile(duck, [ACCURACY], T0 + HOUR, [webhook(hook.url)])
        assert later.failures == [] and len(hook.payloads) == 4
        assert stored(duck, ACCURACY.key)[0]["delivered"] == {"webhook": "sent"}
        hook.statuses = [404]  # a wrong address is not tried again
        with pytest.raises(alerts.DeliveryError, match="HTTP 404 .*in the environment variable TEST_WEBHOOK_URL"):
            webhook(hook.url).send("subject", "text")
        assert len(hook.payloads) == 5
    with pytest.raises(alerts.DeliveryError, match=r"could not reach 127.0.0.1 \(ConnectError"):
        webhook(f"http://127.0.0.1:{free_port()}/hook").send("subject", "text")


def test_starttls_asked_of_a_server_without_it_is_a_sentence_not_a_traceback(duck):
    with smtp_server() as smtp:
        outcome = alerts.reconcile(duck, [ACCURACY], T0, [mail(smtp.port, starttls=True)])
        assert smtp.messages == []
    (failure,) = outcome.failures
    assert f"STARTTLS with the SMTP server 127.0.0.1:{smtp.port} failed (STARTTLS extension not supported" in failure
    assert "HELPERS_SMTP_STARTTLS" in failure and "Traceback" not in failure
    assert stored(duck, ACCURACY.key)[0]["delivered"]["email"] == failure.split("via email: ")[1]


def test_login_uses_the_password_from_the_named_variable(base_settings, monkeypatch):
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        # handled=False: the server answers 535 itself (aiosmtpd's default leaves it to the hook)
        return AuthResult(success=auth_data.password == b"s3cret", handled=False)

    with smtp_server(authenticator=authenticator, auth_require_tls=False) as smtp:
        settings = replace(base_settings, alert_email_to=RECIPIENTS, alert_email_from=SENDER, smtp_host="127.0.0.1",
                           smtp_port=smtp.port, smtp_user="alerts", smtp_password_env="TEST_SMTP_PASSWORD")
        monkeypatch.delenv("TEST_WEBHOOK_URL", raising=False)
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
        (channel,) = alerts.channels_from_settings(settings, timeout=2)
        assert "s3cret" not in repr(channel)
        channel.send("Login test", "It arrived.")
        assert logins == [(b"alerts", b"s3cret")] and smtp.subjects == ["Login test"]

        monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
        (channel,) = alerts.channels_from_settings(settings, timeout=2)
        with pytest.raises(alerts.DeliveryError, match=r"refused the login of smtp_user 'alerts' \(535 .*"
                                                        "environment variable TEST_SMTP_PASSWORD"):
            channel.send("Login test", "It must not arrive.")
        assert len(smtp.messages) == 1

    monkeypatch.delenv("TEST_SMTP_PASSWORD")
    with pytest.raises(ConfigError, match="in the environment variable TEST_SMTP_PASSWORD, which is not set"):
        alerts.channels_from_settings(settings)


def test_channels_come_from_the_settings_and_half_a_channel_is_refused(base_settings, monkeypatch):
    monkeypatch.delenv("TEST_WEBHOOK_URL", raising=False)
    assert alerts.channels_from_settings(base_settings) == []
    with pytest.raises(ConfigError, match="alert_email_from and smtp_host are not set: set alert_email_from in "
                                          "env.yaml or HELPERS_ALERT_EMAIL_FROM; set smtp_host"):
        alerts.channels_from_settings(replace(base_settings, alert_email_to=RECIPIENTS))
    monkeypatch.setenv("TEST_WEBHOOK_URL", "hooks.slack.com/services/secret")
    with pytest.raises(ConfigError, match="TEST_WEBHOOK_URL .* must hold the webhook's http:// or https://"):
        alerts.channels_from_settings(base_settings)
    monkeypatch.setenv("TEST_WEBHOOK_URL", "https://hooks.slack.com/services/secret")
    (channel,) = alerts.channels_from_settings(base_settings)
    assert isinstance(channel, alerts.WebhookChannel) and "secret" not in repr(channel)


def test_conditions_and_channels_are_checked_before_anything_is_written(duck):
    with pytest.raises(ValueError, match="severity must be one of orange, red, high, got 'yellow'"):
        alerts.Condition("drift:temperature", "yellow", "t", "m")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not starting 'summary:'"):
        alerts.Condition("summary:2026-W10", "red", "t", "m")
    with pytest.raises(ValueError, match=r"condition keys must be unique .*\['accuracy:ets_calendar'\]"):
        alerts.reconcile(duck, [ACCURACY, WORSE], T0, [])
    with pytest.raises(ValueError, match=r"channel names must be unique .*\['webhook'\]"):
        alerts.reconcile(duck, [ACCURACY], T0, [webhook("http://a"), webhook("http://b")])
    assert duck.table_counts()["alerts"] == 0
    # no channel configured: the alert is still recorded
    outcome = alerts.reconcile(duck, [ACCURACY], T0, [])
    assert outcome.opened == (ACCURACY.key,) and outcome.deliveries == ()
    assert stored(duck, ACCURACY.key)[0]["delivered"] == {}


# -- the weekly summary ---------------------------------------------------------------------------
def insert(warehouse: Warehouse, table: str, rows: list[dict[str, Any]]) -> None:
    """Rows straight into a table (the intake and forecast-log writers are not this module's)."""
    columns = TABLE_COLUMNS[table]
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    for row in rows:
        warehouse._run(statement, [row.get(column) for column in columns])


def intake(name: str, day: int, outcome: str, read: int, loaded: int, quarantined: int, share: float,
           criticality: str) -> dict[str, Any]:
    return {"file_sha256": name, "file_name": f"{name}.csv", "series_id": "elecdemand", "cycle_id": "c",
            "processed_at": datetime(2026, 3, day, 6), "outcome": outcome, "rows_read": read, "rows_loaded": loaded,
            "rows_quarantined": quarantined, "invalid_share": share, "criticality": criticality, "errors": "{}",
            "archived_as": f"archive/{name}.csv"}


def forecast(prediction_id: str, model: str, day: int, value: float, lower: float | None = None,
             upper: float | None = None, series_id: str = "elecdemand") -> dict[str, Any]:
    return {"prediction_id": prediction_id, "source": "scheduled", "series_id": series_id,
            "issued_at": datetime(2026, 3, 1), "model": model, "model_version": "v1",
            "fitted_until": datetime(2026, 3, 1), "target_date": datetime(2026, 3, day), "horizon_step": day - 1,
            "forecast": value, "lower_95": lower, "upper_95": upper}


def test_the_weekly_summary_goes_once_a_week_with_the_weeks_numbers(warehouse, base_settings, monkeypatch):
    insert(warehouse, "intake_files", [
        intake("good", 3, "good", 1000, 1000, 0, 0.0, "low"),
        intake("mixed", 4, "mixed", 500, 475, 25, 0.05, "medium"),
        intake("bad", 5, "bad", 100, 0, 0, 1.0, "high"),
        intake("last_week", 1, "good", 9999, 9999, 0, 0.0, "low"),
    ])
    # a series of two steps a day: the forecasts are daily totals, twice the day's mean
    insert(warehouse, "series_catalog", [{"series_id": "elecdemand", "freq": "12h", "source_file": "f.csv",
                                          "target_col": "y", "updated_at": datetime(2026, 3, 1)}])
    insert(warehouse, "daily_series", [{"series_id": "elecdemand", "ts": datetime(2026, 3, d), "y_mean": y}
                                       for d, y in ((3, 5.5), (4, 6.0), (9, 25.0))])
    insert(warehouse, "forecast_log", [
        forecast("p1", "ets", 3, 10.0, 9.0, 12.0),   # error 1, inside its interval
        forecast("p2", "ets", 4, 14.0, 13.0, 15.0),  # error 2, outside
        forecast("p3", "naive", 3, 12.0),            # error 1, no interval logged
        forecast("p4", "ets", 5, 99.0),              # no actual yet
        forecast("p5", "ets", 9, 99.0),              # next week: error 49
        forecast("p6", "ets", 3, 99.0, series_id="other"),
    ])
    alerts.reconcile(warehouse, [ACCURACY], T0, [])
    alerts.reconcile(warehouse, [FILE], T0 + 24 * HOUR, [])  # clears the accuracy alert
    monday = datetime(2026, 3, 9, 7, 0)
    with smtp_server() as smtp:
        settings = replace(base_settings, alert_email_to=RECIPIENTS, alert_email_from=SENDER, smtp_host="127.0.0.1",
                           smtp_port=smtp.port)
        delivery = alerts.send_weekly_summary(warehouse, settings, monday, "https://reports.example/index.html")
        assert delivery is not None and delivery.results == {"email": "sent"}
        assert delivery.condition == "summary:2026-W11"
        assert smtp.subjects == ["Weekly summary of elecdemand: Monday 2 March to Sunday 8 March 2026"]
        body = smtp.body()
        for line in ("Files taken in: 3 (1 good, 1 mixed, 1 refused); criticality 1 high, 1 medium, 1 low.",
                     "Rows: 1,600 read, 1,475 loaded, 25 quarantined.",
                     "Data quality: 7.8% of the rows read were invalid; the worst file 100.0%.",
                     "  ets: MAE 1.5 over 2 forecasts; the 95% interval held the actual 1 of 2 times (50%).",
                     "  naive: MAE 1 over 1 forecasts; no 95% interval logged.",
                     "Alerts: 2 opened and 1 cleared this week; 1 open now.",
                     "[orange] Accuracy of ets_calendar has degraded (accuracy:ets_calendar), cleared Wed 04 Mar",
                     "[high] File demand_2026-03-02.csv was mostly refused (file:ab12cd), open",
                     "Reports: https://reports.example/index.html"):
            assert line in body, line
        (record,) = stored(warehouse, "summary:2026-W11")
        assert (record["severity"], record["opened_at"], record["cleared_at"]) == ("info", monday, monday)

        # once per ISO week; and its record is no alert to clear
        assert alerts.send_weekly_summary(warehouse, settings, monday + 3 * HOUR) is None
        assert alerts.send_weekly_summary(warehouse, settings, datetime(2026, 3, 15, 23)) is None
        assert alerts.reconcile(warehouse, [FILE], monday + 4 * HOUR, []).cleared == ()
        assert len(smtp.messages) == 1

        # the next week: one forecast met its actual, nothing else happened
        delivery = alerts.send_weekly_summary(warehouse, settings, datetime(2026, 3, 16, 7))
        assert delivery is not None and len(smtp.messages) == 2
        for line in ("Files taken in: none this week.", "  ets: MAE 49 over 1 forecasts; no 95% interval logged.",
                     "Alerts: 0 opened and 0 cleared this week; 1 open now.", f"Reports: {settings.reports}"):
            assert line in smtp.body(), line

        # due on the weekday set, not before; a failed send is tried again the same week
        wednesday = replace(settings, summary_weekday="wednesday")
        assert alerts.weekly_summary(warehouse, wednesday, datetime(2026, 3, 24, 23)) is None
        text = alerts.weekly_summary(warehouse, wednesday, datetime(2026, 3, 25, 6))
        assert text is not None and text.startswith(
            "Weekly summary of elecdemand: Wednesday 18 March to Tuesday 24 March 2026\n")
        assert "Accuracy: no forecasts with actuals this week." in text
        monkeypatch.setattr(alerts, "SUMMARY_MAX_LISTED", 0)  # a long list of alerts is cut short
        text = alerts.weekly_summary(warehouse, wednesday, datetime(2026, 3, 25, 6))
        assert text is not None and "  ... and 1 more (table alerts in the warehouse)" in text
        failed = alerts.send_weekly_summary(warehouse, wednesday, datetime(2026, 3, 25, 6), channel=mail(free_port()))
        assert failed is not None and failed.failed["email"].startswith("e-mail not sent: cannot connect")
        retried = alerts.send_weekly_summary(warehouse, wednesday, datetime(2026, 3, 25, 7))
        assert retried is not None and retried.results == {"email": "sent"} and len(smtp.messages) == 3
        (record,) = stored(warehouse, "summary:2026-W13")
        assert record["delivered"] == {"email": "sent"} and record["last_seen_at"] == datetime(2026, 3, 25, 7)

    # e-mail off: nothing to send it with
    assert alerts.send_weekly_summary(warehouse, base_settings, datetime(2026, 3, 30, 7)) is None
