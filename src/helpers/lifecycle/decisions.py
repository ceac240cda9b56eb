"""The record of each retraining decision (:mod:`helpers.lifecycle.retrain`): where it is kept,
how it is sent and how the monitoring page shows it.

A decision is kept in three places: a row of the warehouse table ``model_decisions`` (the rule
reads its last one to know when it is due again), tags on the challenger's registry version
(``decision``, ``decision_trigger``, ``decided_at``, the numbers; :data:`TAG_KEYS`) and one
message to the alert channels. As with the alerts (:mod:`helpers.operate.alerts`), the row is
committed before the message is sent, with every channel ``"pending"`` in ``delivered``; later
cycles send again on the channels that did not record ``"sent"``, for ``retrain_every_days``.

This module imports neither MLflow nor the models: the monitoring notebook reads decisions with it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd

from helpers.operate.alerts import PENDING, SENT, Channel, send_message
from helpers.publish import tables
from helpers.warehouse import TABLE_COLUMNS, Warehouse

Outcome = Literal["promoted", "kept", "failed"]
OUTCOMES: tuple[str, ...] = ("promoted", "kept", "failed")
#: Version tags a decision sets on its challenger (all strings, as MLflow keeps them).
TAG_KEYS = ("decision", "decision_trigger", "decided_at", "decision_message", "decision_champion_version",
            "decision_champion_mae", "decision_challenger_mae", "decision_champion_rmse", "decision_challenger_rmse",
            "decision_cutoffs")
SUBJECT_PREFIX = "[retraining]"


@dataclass(frozen=True)
class Score:
    """One registered version scored on the recent folds, pooled over every day of every fold.

    ``coverage_80`` / ``coverage_95``: share of actual values inside the intervals the version
    serves (its own calibration applied); ``fold_mae``: MAE per fold, earliest cutoff first.
    """

    version: int
    model: str
    mae: float
    rmse: float
    coverage_80: float
    coverage_95: float
    fold_mae: tuple[float, ...]


@dataclass(frozen=True)
class Decision:
    """One run of the rule that was due: what triggered it, the two scores and the outcome.

    ``champion``/``challenger`` are None when that version was not scored (a failed decision);
    ``message`` is the decision in one sentence with its numbers (:func:`explain`).
    """

    decision_id: str
    series_id: str
    registered_model: str
    decided_at: datetime
    triggered_by: str
    red_signals: tuple[str, ...]
    outcome: Outcome
    champion_version: int | None
    challenger_version: int | None
    champion: Score | None
    challenger: Score | None
    margin: float
    horizon: int
    cutoffs: tuple[str, ...]
    message: str

    @property
    def change(self) -> float | None:
        """The challenger's MAE relative to the champion's, minus one (-0.05: 5% lower); None unscored."""
        if self.champion is None or self.challenger is None or not self.champion.mae > 0:
            return None
        return self.challenger.mae / self.champion.mae - 1


def _num(value: float) -> str:
    return f"{value:.4g}"


def explain(outcome: Outcome, champion: Score | None, challenger: Score | None, margin: float, folds: int,
            champion_version: int | None, reason: str = "") -> str:
    """The decision in one sentence, built from its numbers: for example "kept version 1: challenger
    version 2 MAE 12.3 vs champion 12.1 on the same 4 folds; needs 2% lower (it is 1.7% higher)".
    ``reason`` says why a failed decision failed."""
    if outcome == "failed" or champion is None or challenger is None:
        kept = f"version {champion_version} stays champion" if champion_version else "no version is champion"
        return f"no challenger was promoted: {reason.rstrip('.')}; {kept}"
    change = challenger.mae / champion.mae - 1
    relation = f"{abs(change):.1%} {'lower' if change < 0 else 'higher'}" if change else "equal"
    numbers = (f"challenger version {challenger.version} MAE {_num(challenger.mae)} vs champion version "
               f"{champion.version} MAE {_num(champion.mae)} on the same {folds} folds")
    if outcome == "promoted":
        return f"promoted version {challenger.version}: {numbers} ({relation}; needs {margin:.0%} lower)"
    return f"kept version {champion.version}: {numbers}; needs {margin:.0%} lower (it is {relation})"


def _score_line(role: str, score: Score) -> str:
    return (f"  {role:<10} version {score.version} ({score.model}): MAE {_num(score.mae)}, RMSE {_num(score.rmse)}, "
            f"its 80% interval held {score.coverage_80:.0%} and its 95% interval {score.coverage_95:.0%} of the "
            f"actual values; MAE by fold {', '.join(_num(v) for v in score.fold_mae)}")


def notice(decision: Decision, link: str | None = None) -> tuple[str, str]:
    """The message to the alert channels: (subject, plain text)."""
    headline = {"promoted": f"version {decision.challenger_version} of {decision.registered_model} is the new champion",
                "kept": f"version {decision.champion_version} of {decision.registered_model} stays champion",
                "failed": f"retraining of {decision.registered_model} failed"}[decision.outcome]
    lines = [decision.message[0].upper() + decision.message[1:] + ".", "",
             f"Triggered by: {decision.triggered_by}"
             + (f" (red: {', '.join(decision.red_signals)})" if decision.red_signals else "") + "."]
    if decision.champion is not None and decision.challenger is not None:
        cutoffs = ", ".join(c[:10] for c in decision.cutoffs)
        lines += ["", f"Both scored on the same {len(decision.cutoffs)} rolling-origin folds of {decision.horizon} "
                      f"days (cutoffs {cutoffs}), each refitted at each cutoff on the data up to it:",
                  _score_line("champion", decision.champion), _score_line("challenger", decision.challenger),
                  f"Promotion needs the challenger's MAE at most {1 - decision.margin:.0%} of the champion's "
                  f"(retrain_margin {decision.margin:g})."]
    lines += ["", f"Series {decision.series_id}, decided at {decision.decided_at:%Y-%m-%d %H:%M} UTC."]
    if link:
        lines.append(f"Monitoring: {link}")
    return f"{SUBJECT_PREFIX} {headline}", "\n".join(lines) + "\n"


def _float(score: Score | None, name: str) -> float | None:
    return None if score is None else float(getattr(score, name))


def row(decision: Decision, delivered: dict[str, str]) -> list[Any]:
    """The decision as a ``model_decisions`` row, every column in order."""
    c, d = decision.champion, decision.challenger
    values = {
        "decision_id": decision.decision_id, "series_id": decision.series_id,
        "registered_model": decision.registered_model, "decided_at": pd.Timestamp(decision.decided_at),
        "outcome": decision.outcome, "triggered_by": decision.triggered_by,
        "red_signals": ",".join(decision.red_signals) or None, "champion_version": decision.champion_version,
        "challenger_version": decision.challenger_version, "champion_model": c.model if c else None,
        "challenger_model": d.model if d else None,
        **{f"{role}_{name}": _float(score, name) for name in ("mae", "rmse", "coverage_80", "coverage_95")
           for role, score in (("champion", c), ("challenger", d))},
        "margin": decision.margin, "folds": len(decision.cutoffs) if c and d else 0,
        "horizon_days": decision.horizon, "cutoffs": json.dumps(list(decision.cutoffs)),
        "message": decision.message, "delivered": json.dumps(delivered, sort_keys=True),
    }
    return [values[column] for column in TABLE_COLUMNS["model_decisions"]]


def tags(decision: Decision) -> dict[str, str]:
    """The version tags of :data:`TAG_KEYS` (numbers as Python writes them; unscored ones left out).
    The margin and the coverage are in the message and the warehouse row: each tag is one call to
    the store."""
    found = {"decision": decision.outcome, "decision_trigger": decision.triggered_by,
             "decided_at": decision.decided_at.isoformat(timespec="seconds"), "decision_message": decision.message,
             "decision_champion_version": "" if decision.champion_version is None else str(decision.champion_version),
             "decision_cutoffs": json.dumps(list(decision.cutoffs))}
    for role, score in (("champion", decision.champion), ("challenger", decision.challenger)):
        if score is not None:
            found.update({f"decision_{role}_{name}": repr(float(getattr(score, name))) for name in ("mae", "rmse")})
    return found


def record(warehouse: Warehouse, decision: Decision, channels: Sequence[Channel], link: str | None = None
           ) -> dict[str, str]:
    """Insert the decision's row, then send its message; returns what each channel did."""
    warehouse.execute("insert_model_decision", row(decision, {channel.name: PENDING for channel in channels}))
    if not channels:
        return {}
    results = send_message(*notice(decision, link), channels)
    warehouse.execute("model_decision_delivered", [json.dumps(results, sort_keys=True), decision.decision_id])
    return results


def read_decisions(warehouse: Warehouse, series_id: str) -> pd.DataFrame:
    """Every decision of ``series_id``, oldest first (the ``model_decisions`` columns)."""
    return warehouse.query("select_model_decisions", [series_id])


def _score_from(record: dict[str, Any], role: str) -> Score | None:
    if pd.isna(record.get(f"{role}_mae")):
        return None
    return Score(int(record[f"{role}_version"]), str(record[f"{role}_model"]), float(record[f"{role}_mae"]),
                 float(record[f"{role}_rmse"]), float(record[f"{role}_coverage_80"]),
                 float(record[f"{role}_coverage_95"]), ())


def _version(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def from_row(record: dict[str, Any]) -> Decision:
    """A ``model_decisions`` row back as a :class:`Decision` (without the per-fold MAE)."""
    red = record.get("red_signals")
    return Decision(str(record["decision_id"]), str(record["series_id"]), str(record["registered_model"]),
                    pd.Timestamp(record["decided_at"]).to_pydatetime(), str(record["triggered_by"]),
                    tuple(str(red).split(",")) if isinstance(red, str) and red else (), record["outcome"],
                    _version(record["champion_version"]), _version(record["challenger_version"]),
                    _score_from(record, "champion"), _score_from(record, "challenger"), float(record["margin"]),
                    int(record["horizon_days"]), tuple(json.loads(record["cutoffs"] or "[]")), str(record["message"]))


def resend(warehouse: Warehouse, decisions: pd.DataFrame, channels: Sequence[Channel], since: datetime,
           link: str | None = None) -> list[str]:
    """Send again the messages of decisions made from ``since`` on that a channel did not deliver;
    returns the ids of those sent again."""
    again = []
    for found in decisions[decisions["decided_at"] >= pd.Timestamp(since)].to_dict("records"):
        before = json.loads(found["delivered"]) if isinstance(found["delivered"], str) and found["delivered"] else {}
        missing = [c for c in channels if c.name in before and before[c.name] != SENT]
        if not missing:
            continue
        results = send_message(*notice(from_row(found), link), missing)
        warehouse.execute("model_decision_delivered", [json.dumps({**before, **results}, sort_keys=True),
                                                       found["decision_id"]])
        again.append(str(found["decision_id"]))
    return again


# -- the monitoring page -------------------------------------------------------------------------------------------
def decision_table(decisions: pd.DataFrame) -> pd.DataFrame:
    """Decisions for a report, newest first: when, outcome, trigger, the accuracy and drift signals
    red at the time, the two versions with their pooled MAE, the challenger's change against the
    champion, the margin it needed, the folds and the sentence."""
    def version(value: Any, model: Any) -> str:
        return "" if value is None or pd.isna(value) else f"{int(value)} ({model})" if isinstance(model, str) else \
            str(int(value))

    rows = []
    for found in decisions.sort_values("decided_at", ascending=False).to_dict("records"):
        champion, challenger = found["champion_mae"], found["challenger_mae"]
        scored = not (pd.isna(champion) or pd.isna(challenger)) and champion > 0
        rows.append({
            "decided (UTC)": f"{found['decided_at']:%Y-%m-%d %H:%M}", "outcome": found["outcome"],
            "trigger": found["triggered_by"],
            "red then": ", ".join(found["red_signals"].split(",")) if isinstance(found["red_signals"], str) else "",
            "champion": version(found["champion_version"], found["champion_model"]),
            "challenger": version(found["challenger_version"], found["challenger_model"]),
            "champion MAE": "" if pd.isna(champion) else _num(champion),
            "challenger MAE": "" if pd.isna(challenger) else _num(challenger),
            "change": f"{challenger / champion - 1:+.1%}" if scored else "",
            "needed": f"-{found['margin']:.0%}", "folds": int(found["folds"]), "decision": found["message"],
        })
    columns = ["decided (UTC)", "outcome", "trigger", "red then", "champion", "challenger", "champion MAE",
               "challenger MAE", "change", "needed", "folds", "decision"]
    return pd.DataFrame(rows, columns=columns)


def styled_decision_table(decisions: pd.DataFrame) -> Any:
    """:func:`decision_table` for a report: whole sentences (a plain frame cuts long text), the
    outcome in the colour of the monitoring statuses."""
    colours = {"promoted": "#c8e6c9", "kept": "#eeeeee", "failed": "#ffcdd2"}
    return (tables.table(decision_table(decisions))
            .map(lambda o: f"background-color: {colours.get(o, '')}; font-weight: bold", subset=["outcome"]))


def summary(decisions: pd.DataFrame, every_days: int) -> str:
    """One Markdown paragraph: the last decision in a sentence, and how many there were."""
    if decisions.empty:
        return (f"**No retraining decision yet.** Each cycle runs the rule: a challenger is trained and scored "
                f"against the champion once no decision was made for {every_days} days (retrain_every_days), or "
                "when an accuracy or drift signal turns red.")
    last = decisions.sort_values("decided_at").iloc[-1]
    counts = decisions["outcome"].value_counts()
    tally = ", ".join(f"{int(counts[o])} {o}" for o in OUTCOMES if o in counts)
    sentence = str(last["message"])
    return (f"**Last decision ({last['decided_at']:%Y-%m-%d %H:%M} UTC, triggered by {last['triggered_by']})**: "
            f"{sentence[0].upper() + sentence[1:]}. {len(decisions)} decision{'s' * (len(decisions) != 1)} so far "
            f"({tally}); the next is due {every_days} days after the last, or sooner when an accuracy or drift "
            "signal turns red.")


def next_due(decided_at: datetime, every_days: int) -> datetime:
    """When the schedule makes the rule due again after a decision at ``decided_at``."""
    return decided_at + timedelta(days=every_days)
