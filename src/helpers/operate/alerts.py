"""Alerts of the operating loop: one per condition until it clears, sent by e-mail and webhook.

Each cycle the caller passes :func:`reconcile` every condition that holds now (each orange or
red monitoring signal, each file of high criticality) as a :class:`Condition` with a stable
key. Compared with the open alerts in the warehouse table ``alerts``:

- a condition without an open alert opens one, and it is sent;
- an open alert whose condition still holds is only marked seen (``last_seen_at``), so a
  condition that lasts a week is one notice, not one per cycle. Only a worse severity
  (orange -> red) is sent once more, and recorded; a better one is not sent and the row
  keeps the worst severity it reached;
- an open alert whose condition no longer holds is cleared (``cleared_at``) and a short
  "cleared" notice is sent. If the condition comes back later, that is a new alert.

Delivery is at least once, and a failed send never loses an alert. The rows are committed
before anything is sent, with every channel ``"pending"`` in ``delivered``; afterwards
``delivered`` holds per channel ``"sent"`` or the error as a sentence. The next
:func:`reconcile` sends again on every channel that did not record ``"sent"``: an open
alert's notice while the alert stays open, a cleared notice for :data:`RETRY_CLEARED` after
the clearing. After a channel fails, the rest of that cycle's notices are not tried on it
(each would wait for the same timeout); they are recorded as not tried, and retried with
the others. A process that dies between the commit and the send leaves ``"pending"``, which
is retried the same way, so a notice may arrive twice but is never lost.

Channels (:func:`channels_from_settings`): :class:`EmailChannel` over SMTP (settings
``alert_email_to``, ``alert_email_from``, ``smtp_host``, ``smtp_port``, ``smtp_starttls``,
``smtp_user``) and :class:`WebhookChannel`, a JSON ``{"text": ...}`` POST that Slack and
Teams incoming webhooks accept. Secrets are never settings: the SMTP password and the
webhook address are read from the environment variables that ``smtp_password_env`` and
``alert_webhook_url_env`` name.

The weekly summary (:func:`weekly_summary`, :func:`send_weekly_summary`) is an e-mail about
the seven days before ``summary_weekday`` (with the default, Monday, the last ISO week):
files taken in, data quality, forecast accuracy, alerts and where the reports are. It is
sent once per ISO week, by the first call on or after that day. Its sending is recorded in
``alerts`` as condition ``summary:<ISO year>-W<week>``, severity ``info``, with
``cleared_at = opened_at`` so it is never an open alert; reconcile and the summary's own
alert counts leave ``info`` rows out.

All times are naive UTC, as the warehouse stores them; an aware ``now`` is converted.
"""

from __future__ import annotations

import functools
import json
import os
import smtplib
import ssl
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal, Protocol

import httpx
import pandas as pd

from helpers.core.settings import WEEKDAYS, ConfigError, Settings, where
from helpers.data.series import daily_total_scale
from helpers.warehouse import TABLE_COLUMNS, Warehouse

Severity = Literal["orange", "red", "high"]
SEVERITIES: tuple[str, ...] = ("orange", "red", "high")
#: Only a higher rank is sent again while an alert is open; a file's "high" ranks with red.
SEVERITY_RANK = {"orange": 1, "red": 2, "high": 2}
#: The severity of the weekly summary's records in ``alerts`` (never an open alert).
SUMMARY_SEVERITY = "info"
SUMMARY_PREFIX = "summary:"
SENT = "sent"
PENDING = "pending"
#: How long after an alert cleared a cleared notice that failed is still retried.
RETRY_CLEARED = timedelta(days=1)
DEFAULT_TIMEOUT_SECONDS = 10.0
#: Alerts listed one by one in the weekly summary; more are counted.
SUMMARY_MAX_LISTED = 20

Notice = Literal["opened", "worsened", "cleared", "retried", "summary", "message"]


class DeliveryError(RuntimeError):
    """A channel could not deliver a notice; the message says why and what to check."""


@dataclass(frozen=True)
class Condition:
    """Something wrong now, that a person on call should act on.

    ``key`` is stable from cycle to cycle ("accuracy:ets_calendar", "drift:temperature",
    "file:<sha256>"): one alert per key until it clears. ``message`` is plain sentences:
    what is wrong, by how much, what to look at. ``link`` is the report page, if any.
    """

    key: str
    severity: Severity
    title: str
    message: str
    link: str | None = None

    def __post_init__(self) -> None:
        if not self.key.strip() or self.key.startswith(SUMMARY_PREFIX):
            raise ValueError(f"a condition needs a key such as 'accuracy:ets_calendar' (not empty, not starting "
                             f"{SUMMARY_PREFIX!r}, which the weekly summary uses), got {self.key!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"condition {self.key!r}: severity must be one of {', '.join(SEVERITIES)}, "
                             f"got {self.severity!r}")


@dataclass(frozen=True)
class Delivery:
    """One notice and what each channel did with it: ``"sent"`` or the error."""

    alert_id: str
    condition: str
    notice: Notice
    results: dict[str, str]

    @property
    def failed(self) -> dict[str, str]:
        return {name: status for name, status in self.results.items() if status != SENT}


@dataclass(frozen=True)
class AlertOutcome:
    """What one :func:`reconcile` did, by condition key."""

    opened: tuple[str, ...]
    worsened: tuple[str, ...]
    #: still holding: only ``last_seen_at`` changed (unless a failed delivery was retried)
    updated: tuple[str, ...]
    cleared: tuple[str, ...]
    deliveries: tuple[Delivery, ...]

    @property
    def failures(self) -> list[str]:
        """One sentence per notice a channel did not deliver (retried next cycle)."""
        return [f"{d.condition} ({d.notice}) via {name}: {error}"
                for d in self.deliveries for name, error in d.failed.items()]

    def summary(self) -> str:
        """One line for the cycle's log."""
        sent = sum(status == SENT for d in self.deliveries for status in d.results.values())
        line = (f"alerts: {len(self.opened)} opened, {len(self.worsened)} worsened, {len(self.updated)} still open, "
                f"{len(self.cleared)} cleared; {sent} notices sent, {len(self.failures)} not delivered")
        return line + "".join(f"\n  {failure}" for failure in self.failures)


# -- channels -------------------------------------------------------------------------------------
class Channel(Protocol):
    """Where notices go; ``send`` raises :class:`DeliveryError` (a sentence) when it cannot deliver."""

    name: str

    def send(self, subject: str, text: str) -> None: ...


@dataclass(frozen=True)
class EmailChannel:
    """Plain-text e-mail over SMTP: STARTTLS when ``starttls``, a login only when ``user`` is set.

    ``password_env`` only names where the password came from, for the error message.
    """

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = True
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    password_env: str = "SMTP_PASSWORD"
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    name: str = "email"

    def send(self, subject: str, text: str) -> None:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = formatdate(usegmt=True)
        # the domain given: make_msgid would otherwise look up this host's name, which can be slow
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or "localhost")
        message.set_content(text)
        step = "connect"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    step = "starttls"
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    step = "login"
                    smtp.login(self.user, self.password or "")
                step = "send"
                smtp.send_message(message, from_addr=self.sender, to_addrs=list(self.recipients))
        except OSError as exc:  # smtplib's errors are OSErrors, as are refusals, timeouts and TLS failures
            raise DeliveryError(self._explain(step, exc)) from None

    def _explain(self, step: str, exc: OSError) -> str:
        server = f"{self.host}:{self.port}"
        error = getattr(exc, "smtp_error", None)
        reason = (f"{exc.smtp_code} {error.decode(errors='replace') if isinstance(error, bytes) else error}"
                  if isinstance(exc, smtplib.SMTPResponseException) else str(exc) or type(exc).__name__)
        what = {
            "connect": f"cannot connect to the SMTP server {server} ({reason}); check smtp_host and smtp_port and "
                       "that the server is up",
            "starttls": f"STARTTLS with the SMTP server {server} failed ({reason}); smtp_starttls is true, so the "
                        "server must offer STARTTLS: use its submission port (usually 587), or, only on a network "
                        f"you trust, turn it off ({where('smtp_starttls')} to false)",
            "login": f"the SMTP server {server} refused the login of smtp_user {self.user!r} ({reason}); check the "
                     f"password in the environment variable {self.password_env}, or empty smtp_user when the "
                     "server needs no login",
            "send": f"the SMTP server {server} did not accept the message ({reason}); check alert_email_from and "
                    "alert_email_to",
        }[step]
        return f"e-mail not sent: {what}"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default certificate check, built once: building it costs ~0.1 s per request."""
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class WebhookChannel:
    """A JSON POST ``{"text": subject + body}``, which Slack and Teams incoming webhooks accept.

    A timeout, a refused connection, HTTP 429 or a 5xx is tried once more after
    ``retry_pause`` seconds; another 4xx is not (the address is wrong). Errors name the
    host only: the address itself is a secret (it is the webhook's credential).
    """

    url: str = field(repr=False)
    url_env: str = "ALERT_WEBHOOK_URL"
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    retry_pause: float = 1.0
    name: str = "webhook"

    def send(self, subject: str, text: str) -> None:
        payload = {"text": f"{subject}\n\n{text}"}
        host = httpx.URL(self.url).host
        for attempt in (1, 2):
            try:
                response = httpx.post(self.url, json=payload, timeout=self.timeout, verify=_tls_context())
            except httpx.TransportError as exc:  # refused, unreachable, timed out
                problem = f"could not reach {host} ({type(exc).__name__}: {exc})"
            else:
                if response.is_success:
                    return
                problem = f"{host} answered HTTP {response.status_code} ({response.text[:200].strip()})"
                if response.status_code != 429 and response.status_code < 500:
                    raise DeliveryError(f"webhook not sent: {problem}; check the address in the environment "
                                        f"variable {self.url_env}")
            if attempt == 1:
                time.sleep(self.retry_pause)
        raise DeliveryError(f"webhook not sent: {problem}, also when tried again; it is retried next cycle")


def email_channel(settings: Settings, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> EmailChannel | None:
    """The e-mail channel of the settings, or None when e-mail is off (none of its settings set).

    E-mail needs ``alert_email_to``, ``alert_email_from`` and ``smtp_host``; some of them
    without the others is a :class:`ConfigError` naming what is missing. With ``smtp_user``
    the password must be in the environment variable ``smtp_password_env`` names.
    """
    needed = {"alert_email_to": settings.alert_email_to, "alert_email_from": settings.alert_email_from,
              "smtp_host": settings.smtp_host}
    missing = [key for key, value in needed.items() if not value]
    if len(missing) == len(needed):
        return None
    if missing:
        raise ConfigError(f"e-mail alerts need alert_email_to, alert_email_from and smtp_host, but "
                          f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
                          f"{'; '.join(where(key) for key in missing)} (or set none of the three for no e-mail)")
    password = None
    if settings.smtp_user:
        password = os.environ.get(settings.smtp_password_env)
        if not password:
            raise ConfigError(f"smtp_user is {settings.smtp_user!r}, so the SMTP password must be in the environment "
                              f"variable {settings.smtp_password_env}, which is not set or empty: export it before "
                              f"the cycle runs, or name the variable that holds it ({where('smtp_password_env')})")
    return EmailChannel(settings.smtp_host, settings.smtp_port, settings.alert_email_from, settings.alert_email_to,
                        settings.smtp_starttls, settings.smtp_user, password, settings.smtp_password_env, timeout)


def channels_from_settings(settings: Settings, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> list[Channel]:
    """The configured channels: e-mail (:func:`email_channel`) and the webhook, which is on when the
    environment variable ``alert_webhook_url_env`` names holds an address. ``timeout`` is per
    connection or request, in seconds."""
    channels: list[Channel] = []
    email = email_channel(settings, timeout)
    if email is not None:
        channels.append(email)
    url = os.environ.get(settings.alert_webhook_url_env, "").strip()
    if url:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"the environment variable {settings.alert_webhook_url_env} (setting "
                              "alert_webhook_url_env) must hold the webhook's http:// or https:// address; it holds "
                              f"something else, starting {url[:6]!r}")
        channels.append(WebhookChannel(url, settings.alert_webhook_url_env, timeout))
    return channels


# -- reconcile ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Send:
    alert_id: str
    condition: str
    notice: Notice
    subject: str
    text: str
    channels: tuple[str, ...]
    before: dict[str, str]


def _utc_naive(moment: datetime) -> datetime:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def _delivered(row: dict[str, Any]) -> dict[str, str]:
    text = row.get("delivered")
    return json.loads(text) if isinstance(text, str) and text else {}


def _stored_message(condition: Condition) -> str:
    """The ``message`` column: the title on the first line, then the message and the report link."""
    parts = [condition.title, condition.message] + ([f"Report: {condition.link}"] if condition.link else [])
    return "\n\n".join(parts)


def _alert_notice(key: str, severity: str, was: str | None, message: str, opened_at: datetime) -> tuple[str, str]:
    title, _, body = message.partition("\n\n")
    change = f", was {was}" if was else ""
    return (f"[{severity}{change}] {title}",
            f"{body}\n\nCondition {key}: {severity}{change}, open since {opened_at:%Y-%m-%d %H:%M} UTC. No further "
            "notice while it holds unless it gets worse; a notice follows when it clears.")


def _cleared_notice(row: dict[str, Any], cleared_at: datetime) -> tuple[str, str]:
    title, _, body = str(row["message"]).partition("\n\n")
    return (f"[cleared] {title}",
            f"Condition {row['condition']} no longer holds: it was {row['severity']} from "
            f"{row['opened_at']:%Y-%m-%d %H:%M} to {cleared_at:%Y-%m-%d %H:%M} UTC.\n\nThe alert said:\n{body}")


def _alert_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS["alerts"])
    for column in ("opened_at", "last_seen_at", "cleared_at"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def _write(warehouse: Warehouse, new_rows: list[dict[str, Any]], updates: list[tuple[str, list[Any]]]) -> None:
    """New rows and updates in one transaction (the stage is filled first: DDL commits on Snowflake)."""
    if not new_rows and not updates:
        return
    if new_rows:
        warehouse.execute("create_log_stages")
    try:
        if new_rows:
            warehouse.load_frame("stage_alerts", _alert_frame(new_rows))
        with warehouse.transaction():
            if new_rows:
                warehouse.execute("insert_alerts")
            for name, params in updates:
                warehouse.execute(name, params)
    finally:
        if new_rows:
            warehouse.execute("drop_log_stages")


def _deliver(sends: list[_Send], channels: Sequence[Channel]) -> list[Delivery]:
    """Send each notice on its channels; a channel that failed is not tried again this time."""
    down: dict[str, str] = {}
    deliveries = []
    for send in sends:
        results = {}
        for channel in channels:
            if channel.name not in send.channels:
                continue
            if channel.name in down:
                results[channel.name] = f"not tried, the channel failed earlier in this cycle: {down[channel.name]}"
                continue
            try:
                channel.send(send.subject, send.text)
                results[channel.name] = SENT
            except DeliveryError as exc:
                results[channel.name] = down[channel.name] = str(exc)
        deliveries.append(Delivery(send.alert_id, send.condition, send.notice, results))
    return deliveries


def send_message(subject: str, text: str, channels: Sequence[Channel]) -> dict[str, str]:
    """Send one message that is not an alert (a retraining decision, for one) on every channel;
    per channel ``"sent"`` or the error as a sentence. A channel that fails does not raise:
    the caller records the results and sends again where they are not ``"sent"``."""
    (delivery,) = _deliver([_Send("", "", "message", subject, text, tuple(c.name for c in channels), {})], channels)
    return delivery.results


def reconcile(warehouse: Warehouse, conditions: Sequence[Condition], now: datetime,
              channels: Sequence[Channel]) -> AlertOutcome:
    """Open, keep, escalate and clear alerts so they match ``conditions``, and send the notices.

    ``conditions`` are all that hold at ``now`` (one per key); the rules, the delivery and
    its retries are in the module docstring. Channel errors do not raise: they are in
    ``delivered`` and in :attr:`AlertOutcome.failures`.
    """
    keys = [c.key for c in conditions]
    names = tuple(channel.name for channel in channels)
    for label, values in (("condition keys", keys), ("channel names", list(names))):
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise ValueError(f"{label} must be unique in one reconcile; repeated: {repeated}")
    now = _utc_naive(now)
    active = {c.key: c for c in conditions}
    rows = warehouse.query("alerts_recent", [now - RETRY_CLEARED]).to_dict("records")
    open_rows: dict[str, dict[str, Any]] = {}
    for row in rows:
        if pd.isna(row["cleared_at"]):
            open_rows.setdefault(row["condition"], row)
    pending = json.dumps({name: PENDING for name in names}, sort_keys=True)
    new_rows: list[dict[str, Any]] = []
    updates: list[tuple[str, list[Any]]] = []
    sends: list[_Send] = []
    opened, worsened, updated, cleared = [], [], [], []
    for key, condition in active.items():
        row = open_rows.get(key)
        message = _stored_message(condition)
        if row is None:
            alert_id = uuid.uuid4().hex
            new_rows.append({"alert_id": alert_id, "condition": key, "severity": condition.severity,
                             "opened_at": now, "last_seen_at": now, "cleared_at": None, "message": message,
                             "delivered": pending})
            sends.append(_Send(alert_id, key, "opened", *_alert_notice(key, condition.severity, None, message, now),
                               names, {}))
            opened.append(key)
        elif SEVERITY_RANK[condition.severity] > SEVERITY_RANK.get(row["severity"], 0):
            updates.append(("alerts_worsen", [condition.severity, message, now, pending, row["alert_id"]]))
            sends.append(_Send(row["alert_id"], key, "worsened",
                               *_alert_notice(key, condition.severity, row["severity"], message, row["opened_at"]),
                               names, {}))
            worsened.append(key)
        else:
            updates.append(("alerts_touch", [now, row["alert_id"]]))
            updated.append(key)
            before = _delivered(row)
            missing = tuple(name for name in names if before.get(name) != SENT)
            if missing:
                sends.append(_Send(row["alert_id"], key, "retried",
                                   *_alert_notice(key, row["severity"], None, row["message"], row["opened_at"]),
                                   missing, before))
    for key, row in open_rows.items():
        if key not in active:
            updates.append(("alerts_clear", [now, pending, row["alert_id"]]))
            sends.append(_Send(row["alert_id"], key, "cleared", *_cleared_notice(row, now), names, {}))
            cleared.append(key)
    for row in rows:
        if not pd.isna(row["cleared_at"]):
            before = _delivered(row)
            missing = tuple(name for name in names if name in before and before[name] != SENT)
            if missing:
                sends.append(_Send(row["alert_id"], row["condition"], "retried",
                                   *_cleared_notice(row, row["cleared_at"]), missing, before))
    _write(warehouse, new_rows, updates)
    sends = [send for send in sends if send.channels]  # no channel configured: recorded, nothing to send
    deliveries = _deliver(sends, channels)
    if deliveries:
        with warehouse.transaction():
            for send, delivery in zip(sends, deliveries):
                merged = json.dumps({**send.before, **delivery.results}, sort_keys=True)
                warehouse.execute("alerts_delivered", [merged, send.alert_id])
    return AlertOutcome(tuple(opened), tuple(worsened), tuple(updated), tuple(cleared), tuple(deliveries))


# -- the weekly summary ---------------------------------------------------------------------------
def _summary_period(settings: Settings, now: datetime) -> tuple[str, datetime, datetime]:
    """The summary's key (the ISO week of ``now``) and the period it covers: the seven days
    before ``summary_weekday`` of that week, which is when it falls due."""
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    due = monday + timedelta(days=WEEKDAYS.index(settings.summary_weekday))
    year, week, _ = now.isocalendar()
    return f"{SUMMARY_PREFIX}{year}-W{week:02d}", due - timedelta(days=7), due


def _period(start: datetime, end: datetime) -> str:
    """``Monday 2 March to Sunday 8 March 2026`` for the days in [start, end)."""
    last = end - timedelta(days=1)
    first = f"{start:%A} {start.day} {start:%B}" + (f" {start.year}" if start.year != last.year else "")
    return f"{first} to {last:%A} {last.day} {last:%B %Y}"


def _summary_sent(warehouse: Warehouse, key: str) -> bool:
    records = [_delivered(row) for row in warehouse.query("alerts_by_condition", [key]).to_dict("records")]
    return any(record and all(status == SENT for status in record.values()) for record in records)


def _compose_summary(warehouse: Warehouse, settings: Settings, start: datetime, end: datetime,
                     report_link: str | None) -> str:
    files = warehouse.query("summary_files", [settings.series_id, start, end]).iloc[0]
    scale = daily_total_scale(warehouse, settings.series_id)  # the forecasts are daily totals
    accuracy = warehouse.query("summary_accuracy", [scale, scale, settings.series_id, start, end])
    alerts = warehouse.query("summary_alerts", [start, end, start, end]).to_dict("records")
    count = {key: int(files[key]) for key in ("files", "good", "mixed", "bad", "high", "medium", "low",
                                              "rows_read", "rows_loaded", "rows_quarantined")}
    lines = [f"Weekly summary of {settings.series_id}: {_period(start, end)}", ""]
    if count["files"]:
        invalid = float(files["invalid_rows"]) / count["rows_read"] if count["rows_read"] else 1.0
        lines += [f"Files taken in: {count['files']} ({count['good']} good, {count['mixed']} mixed, {count['bad']} "
                  f"refused); criticality {count['high']} high, {count['medium']} medium, {count['low']} low.",
                  f"Rows: {count['rows_read']:,} read, {count['rows_loaded']:,} loaded, "
                  f"{count['rows_quarantined']:,} quarantined.",
                  f"Data quality: {invalid:.1%} of the rows read were invalid; the worst file "
                  f"{float(files['worst_invalid_share']):.1%}."]
    else:
        lines += ["Files taken in: none this week."]
    lines.append("")
    if accuracy.empty:
        lines.append("Accuracy: no forecasts with actuals this week.")
    else:
        lines.append("Accuracy of the forecasts for this week's days, against the actual daily total:")
        for row in accuracy.itertuples():
            n_interval, n_covered = int(row.n_interval), int(row.n_covered)
            coverage = (f"the 95% interval held the actual {n_covered} of {n_interval} times "
                        f"({n_covered / n_interval:.0%})" if n_interval else "no 95% interval logged")
            lines.append(f"  {row.model}: MAE {float(row.mae):.4g} over {int(row.n)} forecasts; {coverage}.")
    lines.append("")
    opened = sum(start <= row["opened_at"] < end for row in alerts)
    cleared = sum(not pd.isna(row["cleared_at"]) and start <= row["cleared_at"] < end for row in alerts)
    still_open = sum(pd.isna(row["cleared_at"]) for row in alerts)
    lines.append(f"Alerts: {opened} opened and {cleared} cleared this week; {still_open} open now.")
    for row in alerts[:SUMMARY_MAX_LISTED]:
        state = "open" if pd.isna(row["cleared_at"]) else f"cleared {row['cleared_at']:%a %d %b %H:%M}"
        title = str(row["message"]).partition("\n\n")[0]
        lines.append(f"  {row['opened_at']:%a %d %b %H:%M} [{row['severity']}] {title} ({row['condition']}), {state}")
    if len(alerts) > SUMMARY_MAX_LISTED:
        lines.append(f"  ... and {len(alerts) - SUMMARY_MAX_LISTED} more (table alerts in the warehouse)")
    lines += ["", f"Reports: {report_link or settings.reports}", "",
              f"One summary per ISO week, sent by the first cycle on or after {settings.summary_weekday.title()} "
              "(setting summary_weekday); times are UTC."]
    return "\n".join(lines) + "\n"


def weekly_summary(warehouse: Warehouse, settings: Settings, now: datetime,
                   report_link: str | None = None) -> str | None:
    """The weekly summary due at ``now`` as plain text (its first line is the subject), or None
    when none is due: before ``summary_weekday`` in this ISO week, or this week's was sent.

    It covers the seven days before that weekday (module docstring) from the warehouse:
    ``intake_files`` (files, rows, criticality, the invalid share weighted by rows read),
    ``forecast_log`` joined to ``daily_series`` on ``target_date = ts`` (MAE against
    ``y_mean`` and the 95% interval's coverage, by model), ``alerts`` opened or cleared in the
    period and open now, and ``report_link`` (default: the ``reports`` folder).
    """
    now = _utc_naive(now)
    key, start, end = _summary_period(settings, now)
    if now < end or _summary_sent(warehouse, key):
        return None
    return _compose_summary(warehouse, settings, start, end, report_link)


def send_weekly_summary(warehouse: Warehouse, settings: Settings, now: datetime, report_link: str | None = None,
                        channel: Channel | None = None) -> Delivery | None:
    """Send the weekly summary when one is due (:func:`weekly_summary`) and record it.

    ``channel`` defaults to the e-mail channel of ``settings``; with e-mail off nothing is
    sent or recorded and the result is None, as it is when no summary is due. The record
    (condition ``summary:<ISO year>-W<week>``, severity ``info``, cleared when opened) is
    committed before the send; a send that failed leaves its error in ``delivered`` and the
    next call in the same week sends again.
    """
    channel = channel or email_channel(settings)
    if channel is None:
        return None
    text = weekly_summary(warehouse, settings, now, report_link)
    if text is None:
        return None
    now = _utc_naive(now)
    key = _summary_period(settings, now)[0]
    earlier = warehouse.query("alerts_by_condition", [key])
    if earlier.empty:
        alert_id = uuid.uuid4().hex
        _write(warehouse, [{"alert_id": alert_id, "condition": key, "severity": SUMMARY_SEVERITY, "opened_at": now,
                            "last_seen_at": now, "cleared_at": now, "message": text,
                            "delivered": json.dumps({channel.name: PENDING})}], [])
    else:
        alert_id = str(earlier["alert_id"].iloc[0])
    (delivery,) = _deliver([_Send(alert_id, key, "summary", text.partition("\n")[0], text, (channel.name,), {})],
                           [channel])
    with warehouse.transaction():
        warehouse.execute("alerts_delivered", [json.dumps(delivery.results), alert_id])
        warehouse.execute("alerts_touch", [now, alert_id])
    return delivery
