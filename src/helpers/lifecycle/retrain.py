"""Retraining by rule: a challenger is trained when the rule is due, scored against the champion
on the same recent folds, and promoted only when it beats the champion by a margin.

Each operating cycle runs the rule (the ``retrain`` task of ``pipeline.operate.yaml``):

- **Due** (:func:`check_due`) when no decision was made in the last ``retrain_every_days`` days,
  by the cycle's time (a replay's simulated time counts), or when an accuracy or drift signal of
  the cycle is red and was not red at the last decision (it turned red since). A rule that is not
  due costs one warehouse query: neither MLflow nor the models are imported.
- **Training** (:func:`train_challenger`): the daily model comparison on all the data now in the
  warehouse (settings ``daily_*``), then the final fit, as the pipeline's ``fit_final`` does
  (:func:`helpers.forecast.comparison.final_artifact`). The conditional models (observed future
  temperature) are left out of this comparison: a comparison reports them but never selects
  them. The comparison is logged as an MLflow run and its artifact registered as a new version
  with alias ``challenger``.
- **Scoring** (:func:`score_versions`): the champion (its artifact's models, calibration and
  comparison settings) and the challenger on the same folds: the last ``retrain_folds`` cutoffs,
  ``daily_horizon`` days apart, the last one ``daily_horizon`` days before the last day of data
  (:func:`recent_cutoffs`). Each model is refitted at each cutoff on the data up to it and
  forecasts the next ``daily_horizon`` days with the intervals its version serves. MAE, RMSE and
  interval coverage are pooled over every day of every fold.
- **Decision**: promoted (:meth:`helpers.lifecycle.registry.Registry.promote`) only if the
  challenger's MAE is at most ``1 - retrain_margin`` times the champion's; otherwise it stays
  challenger. A challenger that cannot be trained, registered or scored makes a ``failed``
  decision with the reason, and the champion stays.

Every decision is recorded (:mod:`helpers.lifecycle.decisions`): a warehouse row, tags on the
challenger's version, one message to the alert channels, a table on the monitoring page.

What the scores can and cannot say: each forecast uses only the data up to its cutoff, for both
versions. The challenger's choice of model and its interval calibration, though, were made on all
the data, the scoring folds' days included, while a champion trained earlier never saw them: the
challenger has that advantage, which the margin is there to absorb.
"""

from __future__ import annotations

import sys
import traceback
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.settings import SEASONS, Settings
from helpers.data.series import load_series
from helpers.forecast import backtest as bt
from helpers.forecast import calibration, comparison
from helpers.forecast.artifact import load_artifact, write_artifact
from helpers.forecast.models import DEFAULT_LEVELS, TEMPERATURE_MODELS
from helpers.lifecycle import decisions
from helpers.lifecycle.champion import reason as _reason
from helpers.lifecycle.decisions import Decision, Score
from helpers.operate import alerts
from helpers.operate.refit import production_config
from helpers.warehouse import Warehouse

#: Signals whose turning red makes the rule due.
RED_PREFIXES = ("accuracy:", "drift:")
#: Seasons of training the scoring needs before its first cutoff (the models need two).
MIN_TRAIN_SEASONS = 2


class RetrainError(ValueError):
    """A challenger cannot be trained or the versions cannot be scored; the message says why and what to change."""


# -- when the rule is due --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Due:
    """Whether the rule is due now, and why: ``triggered_by`` is ``schedule``, ``red`` or both
    (``""`` when not due); ``red_signals`` are the accuracy and drift signals red now."""

    due: bool
    triggered_by: str
    reason: str
    red_signals: tuple[str, ...]


def red_signals(signals: Iterable[Any]) -> tuple[str, ...]:
    """The keys of the red accuracy and drift signals among ``signals`` (``Signal`` objects, or their
    dicts as the cycle's ``alerts.json`` holds them), sorted."""
    keys = set()
    for signal in signals:
        key, status = (signal["key"], signal["status"]) if isinstance(signal, Mapping) else (signal.key, signal.status)
        if status == "red" and key.startswith(RED_PREFIXES):
            keys.add(key)
    return tuple(sorted(keys))


def _age(delta: timedelta) -> str:
    days = delta / timedelta(days=1)
    return f"{days:.0f} days" if days >= 1.5 else f"{delta / timedelta(hours=1):.0f} hours"


def check_due(now: datetime, red: Sequence[str], last_decided_at: datetime | None, last_red: Sequence[str],
              every_days: int) -> Due:
    """The rule (module docstring) at ``now``, given the red signals now and the last decision's time
    and red signals (None: no decision yet)."""
    triggers, reasons = [], []
    if last_decided_at is None:
        triggers.append("schedule")
        reasons.append("no decision has been made yet")
    elif now - last_decided_at >= timedelta(days=every_days):
        triggers.append("schedule")
        reasons.append(f"the last decision was {_age(now - last_decided_at)} ago, on {last_decided_at:%Y-%m-%d} "
                       f"(retrain_every_days is {every_days})")
    turned = [key for key in red if key not in last_red]
    if turned:
        triggers.append("red")
        reasons.append(f"{', '.join(turned)} turned red" + (" since the last decision" if last_decided_at else ""))
    if triggers:
        return Due(True, ", ".join(triggers), "; ".join(reasons), tuple(red))
    assert last_decided_at is not None  # without a decision the schedule is due
    still = f"{', '.join(red)} {'was' if len(red) == 1 else 'were'} red already then" if red else \
        "no accuracy or drift signal is red"
    return Due(False, "", f"not due: the last decision was {_age(now - last_decided_at)} ago, on "
                          f"{last_decided_at:%Y-%m-%d %H:%M}; the schedule makes the next due on "
                          f"{decisions.next_due(last_decided_at, every_days):%Y-%m-%d %H:%M} (retrain_every_days "
                          f"{every_days}), and {still}", tuple(red))


# -- scoring on the same recent folds ------------------------------------------------------------------------------
def recent_cutoffs(ds: pd.Series, horizon: int, folds: int, min_train: int) -> list[pd.Timestamp]:
    """The last ``folds`` cutoffs, ``horizon`` steps apart, the last one ``horizon`` steps before the
    end of ``ds``: their folds cover the last ``folds * horizon`` steps, with at least ``min_train``
    steps before the first cutoff."""
    first = len(ds) - 1 - folds * horizon  # position of the first cutoff
    if first + 1 < min_train:
        raise RetrainError(f"the series has {len(ds)} days, and scoring on {folds} folds of {horizon} days needs at "
                           f"least {folds * horizon + min_train} ({min_train} of them before the first cutoff); lower "
                           "retrain_folds (env.yaml or HELPERS_RETRAIN_FOLDS) or daily_horizon, or wait for more data")
    return bt.make_cutoffs(ds, horizon, folds, first + 1)


def _members(payload: dict[str, Any]) -> list[str]:
    """The models a version forecasts with: its selected model, or an ensemble's members."""
    selected = payload["selected_model"]
    return list(payload["models"][selected].get("members") or [selected])


def score_versions(frame: pd.DataFrame, payloads: Mapping[int, dict[str, Any]], cutoffs: Sequence[pd.Timestamp],
                   horizon: int) -> dict[int, Score]:
    """Each version (number: artifact payload) scored on ``cutoffs``: its selected model (an
    ensemble: its members, then their mean) refitted at each cutoff on ``frame`` up to it with the
    artifact's comparison settings, ``horizon`` days forecast, its served calibration applied.
    A model two versions share under the same settings is backtested once.

    Args:
        frame: the daily series (``unique_id, ds, y`` plus covariates, no missing ``y``).
    """
    groups: dict[tuple, list[int]] = {}
    configs = {}
    for version, payload in payloads.items():
        configs[version] = config = replace(production_config(payload), horizon=horizon)
        groups.setdefault((config.season_lengths, config.holiday_country, config.holiday_subdiv), []).append(version)
    backtests: dict[int, pd.DataFrame] = {}
    for versions in groups.values():
        config = configs[versions[0]]
        names = list(dict.fromkeys(name for v in versions for name in _members(payloads[v])))
        data = config.with_calendar(frame)
        models = config.build(names, data)
        for version in versions:
            missing = [m for m in _members(payloads[version]) if m not in {model.name for model in models}]
            if missing:
                raise RetrainError(f"version {version} forecasts with {', '.join(missing)}, which this series cannot "
                                   "feed now (a calendar model needs holiday_country, a temperature model the "
                                   "temperature)")
        forecasts, _ = bt.backtest(data, models, horizon, cutoffs)
        backtests.update({version: forecasts for version in versions})
    return {version: _score(backtests[version], payload, version) for version, payload in payloads.items()}


def _score(forecasts: pd.DataFrame, payload: dict[str, Any], version: int) -> Score:
    """One version's :class:`Score` from the backtest of its models (:func:`score_versions`)."""
    selected = payload["selected_model"]
    if selected == "ensemble":
        forecasts = bt.add_ensemble(forecasts, _members(payload))
    served = calibration.calibrate_columns(
        forecasts, selected, calibration.from_record({selected: payload["models"][selected]["calibration"]})[selected],
        prefix=f"{selected}-")
    y = served["y"].to_numpy(dtype=float)
    error = y - served[selected].to_numpy(dtype=float)

    def coverage(level: int) -> float:
        lo, hi = served[f"{selected}-lo-{level}"].to_numpy(), served[f"{selected}-hi-{level}"].to_numpy()
        return float(np.mean((y >= lo) & (y <= hi)))

    by_fold = pd.Series(np.abs(error)).groupby(served["cutoff"].to_numpy()).mean()
    return Score(version, selected, float(np.mean(np.abs(error))), float(np.sqrt(np.mean(error ** 2))),
                 *(coverage(level) for level in DEFAULT_LEVELS), tuple(float(v) for v in by_fold))


def promotes(champion: Score, challenger: Score, margin: float) -> bool:
    """The rule: the challenger's MAE at most ``1 - margin`` times the champion's."""
    return challenger.mae <= champion.mae * (1 - margin)


# -- training the challenger ----------------------------------------------------------------------------------------
def challenger_config(settings: Settings) -> comparison.ComparisonConfig:
    """The daily comparison of ``settings`` without the conditional models (never selected)."""
    config = comparison.ComparisonConfig.from_settings(settings, "daily")
    return replace(config, models=tuple(m for m in config.models if m not in TEMPERATURE_MODELS))


def train_challenger(settings: Settings, frame: pd.DataFrame, folder: Path, created_utc: str) -> tuple[Path, Path]:
    """The daily model comparison on ``frame`` and the final fit; returns the paths of
    ``selection.json`` and ``forecast_artifact.json`` written into ``folder``. The artifact's
    ``data_sha256`` is the hash of ``frame`` (:func:`helpers.forecast.comparison.frame_sha256`).
    Folds fitted before on the same data are read from the pipeline's cross-validation cache."""
    result = comparison.run_comparison(frame, challenger_config(settings), jobs=settings.cv_jobs,
                                       cache_dir=comparison.cache_folder(settings))
    selection = comparison.write_selection(result, folder / "selection.json")
    config, record = comparison.read_selection(selection)
    payload = comparison.final_artifact(frame, config, record, series_id=settings.series_id,
                                        data_sha256=comparison.frame_sha256(frame), parameters=settings.as_env(),
                                        created_utc=created_utc)
    return selection, write_artifact(folder / "forecast_artifact.json", payload)


# -- the decision ---------------------------------------------------------------------------------------------------
def _report(what: str) -> None:
    """The traceback of the exception being handled, on stderr (the cycle's log), under ``what``."""
    print(f"retraining: {what}:", file=sys.stderr)
    traceback.print_exc(file=sys.stderr)


def make_decision(settings: Settings, view: pd.DataFrame, now: datetime, due: Due, folder: Path) -> Decision:
    """Train, register and score a challenger and decide (module docstring); a step that fails
    makes a ``failed`` decision naming it and why (its traceback goes to stderr)."""
    from helpers.lifecycle.registry import CHALLENGER, CHAMPION, Registry, RegistryError
    from helpers.lifecycle.tracking import log_comparison

    registry = Registry.from_settings(settings)
    margin, horizon = settings.retrain_margin, settings.daily_horizon

    def decision(outcome: str, champion_version: int | None, challenger_version: int | None = None,
                 scores: tuple[Score, Score] | None = None, cutoffs: Sequence[pd.Timestamp] = (),
                 reason: str = "") -> Decision:
        champion, challenger = scores or (None, None)
        message = decisions.explain(outcome, champion, challenger, margin, len(cutoffs),  # type: ignore[arg-type]
                                    champion_version, reason)
        return Decision(uuid.uuid4().hex, settings.series_id, registry.name, now, due.triggered_by, due.red_signals,
                        outcome, champion_version, challenger_version, champion, challenger,  # type: ignore[arg-type]
                        margin, horizon, tuple(c.isoformat() for c in cutoffs), message)

    try:
        champion = registry.get(CHAMPION)
    except Exception as exc:  # the store: a server down, a file that is not a database
        _report("the registry could not be read")
        return decision("failed", None, reason=f"the registry {registry.store.registry_uri} could not be read "
                                                f"({_reason(exc)})")
    if champion is None:
        return decision("failed", None, reason=f"{registry.name} has no champion to compare a challenger with "
                                               "(`make run` registers the first)")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        frame = comparison.prepare_frame(view)
        selection, artifact = train_challenger(settings, frame, folder, now.isoformat(timespec="seconds"))
        trained = load_artifact(artifact)
        # trained already (a cycle run again at the same time): no second run, no second version
        challenger = registry.find(trained["created_utc"], trained["data_sha256"])
        if challenger is None:
            run_id = log_comparison(registry.store, selection, artifact, client=registry.client)
            challenger = registry.register(artifact, run_id=run_id, alias=CHALLENGER)
    except Exception as exc:  # one failing challenger must not end the cycle: it is a failed decision
        _report("the challenger could not be trained")
        return decision("failed", champion.version, reason=f"the challenger could not be trained ({_reason(exc)})")
    if challenger.version == champion.version:
        return decision("failed", champion.version, challenger.version,
                        reason=f"the challenger's artifact is the champion's own (version {champion.version})")
    try:
        cutoffs = recent_cutoffs(frame["ds"], horizon, settings.retrain_folds,
                                 MIN_TRAIN_SEASONS * max(SEASONS["daily"]))
        scored = score_versions(frame, {champion.version: load_artifact(registry.artifact(champion.version, folder)),
                                        challenger.version: trained}, cutoffs, horizon)
        scores = (scored[champion.version], scored[challenger.version])
    except Exception as exc:
        _report("the versions could not be scored")
        made = decision("failed", champion.version, challenger.version,
                        reason=f"challenger version {challenger.version} could not be scored against the champion "
                               f"({_reason(exc)})")
    else:
        made = decision("promoted" if promotes(*scores, margin) else "kept", champion.version, challenger.version,
                        scores, cutoffs)
        if made.outcome == "promoted":
            try:
                registry.promote(challenger.version)
            except RegistryError as exc:
                made = decision("failed", champion.version, challenger.version, scores, cutoffs,
                                reason=f"challenger version {challenger.version} beat the champion "
                                       f"({made.message.partition(': ')[2]}) but could not be promoted ({exc})")
    try:
        for key, value in decisions.tags(made).items():
            registry.client.set_model_version_tag(registry.name, str(challenger.version), key, value)
    except Exception:  # the decision is still recorded in the warehouse and sent
        _report(f"the decision could not be tagged on version {challenger.version}")
    return made


# -- one run of the rule --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleRun:
    """What one run of the rule did: whether it was due, the decision when it was, what each
    channel did with its message, and the earlier decisions whose message was sent again."""

    due: Due
    decision: Decision | None = None
    delivered: dict[str, str] = field(default_factory=dict)
    resent: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line (two when a message was not delivered) for the cycle's log."""
        if self.decision is None:
            return f"retraining {self.due.reason}"
        failed = {name: status for name, status in self.delivered.items() if status != alerts.SENT}
        line = f"retraining due ({self.due.reason}): {self.decision.message}"
        return line + "".join(f"\n  message not sent via {name}: {status}" for name, status in failed.items())

    def as_record(self) -> dict[str, Any]:
        """The cycle task's product (JSON-ready)."""
        made = self.decision
        return {"due": self.due.due, "triggered_by": self.due.triggered_by, "reason": self.due.reason,
                "red_signals": list(self.due.red_signals), "resent": list(self.resent),
                "decision": None if made is None else {
                    "decision_id": made.decision_id, "outcome": made.outcome, "message": made.message,
                    "champion_version": made.champion_version, "challenger_version": made.challenger_version,
                    "champion_mae": made.champion.mae if made.champion else None,
                    "challenger_mae": made.challenger.mae if made.challenger else None,
                    "cutoffs": list(made.cutoffs), "delivered": self.delivered}}


def _naive_utc(moment: datetime) -> datetime:
    stamp = pd.Timestamp(moment)
    return (stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp).to_pydatetime()


def run_rule(settings: Settings, now: datetime, signals: Iterable[Any], folder: Path, link: str | None = None,
             channels: Sequence[alerts.Channel] | None = None) -> RuleRun:
    """Run the rule at ``now`` given the cycle's monitoring ``signals``; decide when due, record the
    decision and send it (``channels`` default to the settings' alert channels; ``link``: the
    monitoring page). Messages of recent decisions that a channel did not deliver are sent again.
    ``folder`` receives the challenger's products. The warehouse is closed while a challenger trains."""
    channels = alerts.channels_from_settings(settings) if channels is None else channels
    now = _naive_utc(now)
    with Warehouse.from_settings(settings) as warehouse:
        earlier = decisions.read_decisions(warehouse, settings.series_id)
        resent = decisions.resend(warehouse, earlier, channels, now - timedelta(days=settings.retrain_every_days),
                                  link)
        last = earlier.iloc[-1] if len(earlier) else None
        due = check_due(now, red_signals(signals), None if last is None else last["decided_at"].to_pydatetime(),
                        () if last is None or not isinstance(last["red_signals"], str) else
                        last["red_signals"].split(","), settings.retrain_every_days)
        if not due.due:
            return RuleRun(due, resent=tuple(resent))
        view = load_series(warehouse, settings.series_id, "daily", max_fill_steps=settings.max_fill_steps)
    made = make_decision(settings, view, now, due, folder)
    with Warehouse.from_settings(settings) as warehouse:
        delivered = decisions.record(warehouse, made, channels, link)
    return RuleRun(due, made, delivered, tuple(resent))
