"""The retraining rule: when it is due, the folds both versions are scored on, known-answer
decisions on planted data with a real MLflow SQLite store, and a challenger that fails."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.core.settings import load_settings
from helpers.data.ingest import ingest
from helpers.data.series import load_series
from helpers.forecast import comparison
from helpers.forecast.artifact import load_artifact
from helpers.lifecycle import retrain
from helpers.lifecycle.decisions import Score
from helpers.lifecycle.registry import Registry
from helpers.operate.monitoring import Signal
from helpers.warehouse import Warehouse
from helpers.operate import alerts
from tests.lifecycle.conftest import copy_store
from tests.servers import free_port, smtp_server
from tests.support import artifact_payload, daily_series

T0 = datetime(2026, 3, 3, 8, 0)
DAY = timedelta(days=1)
WEEK = (4.0, 4.5, 5.0, 5.5, 6.0, 2.0, 1.5)  # a strong weekly pattern: last week's day beats yesterday by far
DAYS = 126
#: Tests on the planted project: its module fixture imports MLflow and registers the champion (7-20 s
#: on two busy cores, more when it makes the session's store), each decision trains and registers one.
slow = pytest.mark.slow


# -- when the rule is due -----------------------------------------------------------------------------------------
def test_the_first_run_is_due_by_schedule():
    due = retrain.check_due(T0, (), None, (), 7)
    assert (due.due, due.triggered_by, due.reason) == (True, "schedule", "no decision has been made yet")


def test_due_again_retrain_every_days_after_the_last_decision_by_the_cycle_s_time():
    assert not retrain.check_due(T0 + 7 * DAY - timedelta(minutes=1), (), T0, (), 7).due
    due = retrain.check_due(T0 + 7 * DAY, (), T0, (), 7)
    assert (due.due, due.triggered_by) == (True, "schedule")
    assert due.reason == "the last decision was 7 days ago, on 2026-03-03 (retrain_every_days is 7)"
    assert retrain.check_due(T0 + 2 * DAY, (), T0, (), 2).due


def test_not_due_says_when_it_will_be():
    due = retrain.check_due(T0 + 3 * DAY, ("accuracy:ets",), T0, ("accuracy:ets",), 7)
    assert (due.due, due.triggered_by, due.red_signals) == (False, "", ("accuracy:ets",))
    assert due.reason == ("not due: the last decision was 3 days ago, on 2026-03-03 08:00; the schedule makes the next "
                          "due on 2026-03-10 08:00 (retrain_every_days 7), and accuracy:ets was red already then")
    assert retrain.check_due(T0 + DAY / 2, (), T0, (), 7).reason.startswith("not due: the last decision was 12 hours")
    assert retrain.check_due(T0 + DAY, (), T0, (), 7).reason.endswith("and no accuracy or drift signal is red")


def test_an_accuracy_or_drift_signal_turning_red_triggers_at_once():
    signals = [Signal("accuracy:ets", "red", 2.1, "", ""), Signal("drift:y_mean", "red", 0.4, "", ""),
               Signal("coverage_95:ets", "red", 0.3, "", ""), Signal("data_quality:criticality", "red", 1.0, "", ""),
               {"key": "drift:temperature_mean", "status": "orange"}, {"key": "accuracy:naive", "status": "red"}]
    red = retrain.red_signals(signals)
    assert red == ("accuracy:ets", "accuracy:naive", "drift:y_mean")  # coverage and data quality do not retrain
    due = retrain.check_due(T0 + DAY, red, T0, ("accuracy:ets",), 7)
    assert (due.due, due.triggered_by) == (True, "red")
    assert due.reason == "accuracy:naive, drift:y_mean turned red since the last decision"
    both = retrain.check_due(T0 + 8 * DAY, red, T0, (), 7)
    assert both.triggered_by == "schedule, red" and both.red_signals == red


# -- the folds -----------------------------------------------------------------------------------------------------
def test_the_recent_folds_tile_the_last_days_horizon_apart():
    ds = pd.Series(pd.date_range("2026-01-01", periods=100, freq="1D"))
    cutoffs = retrain.recent_cutoffs(ds, 14, 3, 14)
    assert cutoffs == [ds.iloc[-1] - 14 * k * DAY for k in (3, 2, 1)]  # folds of days 58..99: the last 42
    assert retrain.recent_cutoffs(ds, 14, 1, 14) == [ds.iloc[85]]
    with pytest.raises(retrain.RetrainError) as refused:
        retrain.recent_cutoffs(ds, 14, 7, 14)
    assert str(refused.value) == ("the series has 100 days, and scoring on 7 folds of 14 days needs at least 112 "
                                  "(14 of them before the first cutoff); lower retrain_folds (env.yaml or "
                                  "HELPERS_RETRAIN_FOLDS) or daily_horizon, or wait for more data")


def test_the_margin_decides():
    champion = Score(1, "a", 10.0, 12.0, 0.8, 0.95, ())
    assert retrain.promotes(champion, Score(2, "b", 9.8, 13.0, 0.8, 0.95, ()), 0.02)
    assert not retrain.promotes(champion, Score(2, "b", 9.81, 11.0, 0.8, 0.95, ()), 0.02)
    assert not retrain.promotes(champion, Score(2, "b", 10.0, 11.0, 0.8, 0.95, ()), 0.02)  # equal: kept by the margin
    assert retrain.promotes(champion, Score(2, "b", 10.0, 11.0, 0.8, 0.95, ()), 0.0)


def version_payload(selected: str, members: list[str] | None = None, holiday_country: str | None = None) -> dict:
    """An artifact that forecasts with ``selected`` (an ensemble of ``members``), scaled intervals."""
    payload = artifact_payload(models=(selected,))
    payload["models"][selected]["members"] = members
    payload["parameters"] = {"comparison": comparison.config_dict(comparison.ComparisonConfig.parse(
        "daily", 7, 4, 28, ",".join(members or [selected]), 14, holiday_country=holiday_country))}
    return payload


def test_an_ensemble_is_scored_as_the_mean_of_its_members():
    """Known answer: naive repeats the cutoff's value, seasonal naive the last week; the ensemble averages them."""
    frame = daily_series(n=70, noise=0.0)
    cutoffs = retrain.recent_cutoffs(frame["ds"], 7, 2, 14)
    scores = retrain.score_versions(frame, {1: version_payload("ensemble", ["naive", "seasonal_naive"]),
                                            2: version_payload("naive")}, cutoffs, 7)
    y = frame.set_index("ds")["y"]
    errors = []
    for c in cutoffs:
        days = pd.date_range(c + DAY, periods=7)
        mean = (y[c] + y[days - 7 * DAY].to_numpy()) / 2
        errors.append(np.abs(y[days].to_numpy() - mean))
    assert scores[1].model == "ensemble" and scores[1].fold_mae == pytest.approx([e.mean() for e in errors])
    assert scores[1].rmse == pytest.approx(np.sqrt(np.mean(np.concatenate(errors) ** 2)))
    assert scores[2].mae > scores[1].mae  # naive alone misses the whole weekly swing


def test_a_version_whose_models_this_series_cannot_feed_cannot_be_scored():
    frame = daily_series(n=70)
    cutoffs = retrain.recent_cutoffs(frame["ds"], 7, 2, 14)
    with pytest.raises(retrain.RetrainError, match="version 3 forecasts with ets_calendar, which this series cannot "
                                                   "feed now .a calendar model needs holiday_country"):
        retrain.score_versions(frame, {3: version_payload("ets_calendar")}, cutoffs, 7)


# -- decisions on planted data ------------------------------------------------------------------------------------
def settings_for(folder: Path, **changes):
    """Settings of the planted series in ``folder``: a 7-day horizon, 3 scoring folds, fast models."""
    values = {"source_file": str(folder / "load.csv"), "series_id": "weekly", "timestamp_col": "time",
              "target_col": "load", "temperature_col": "", "workday_col": "", "freq": "1h", "holiday_country": "",
              "holiday_subdiv": "", "hemisphere": "", "warehouse_path": str(folder / "wh.duckdb"),
              "products": str(folder / "products"), "mlflow_dir": str(folder / "mlflow"), "daily_horizon": 7,
              "daily_folds": 4, "daily_min_train": 28, "daily_models": "naive,seasonal_naive", "max_horizon": 14,
              "retrain_folds": 3, "retrain_margin": 0.02, "alert_email_to": "", "alert_email_from": "",
              "smtp_host": "", "alert_webhook_url_env": "NO_WEBHOOK_HERE"}
    return load_settings(**{**values, **changes})


@pytest.fixture(scope="module")
def planted(mlflow_store_db, tmp_path_factory) -> Path:
    """A weekly-patterned hourly series ingested, and a store whose champion (version 1) forecasts
    with ``naive`` alone (as a comparison of naive and window_average chose it): a challenger that
    may use the weekly pattern beats it by far."""
    folder = copy_store(mlflow_store_db, tmp_path_factory.mktemp("planted") / "mlflow").parent
    ts = pd.date_range("2026-01-05", periods=24 * DAYS, freq="1h")
    load = np.take(WEEK, ts.dayofweek) + np.random.default_rng(1).normal(0, 0.05, len(ts))
    pd.DataFrame({"time": ts.strftime("%Y-%m-%d %H:%M:%S"), "load": load.round(4)}).to_csv(folder / "load.csv",
                                                                                          index=False)
    settings = settings_for(folder, daily_models="naive")
    ingest(settings)
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        frame = comparison.prepare_frame(load_series(warehouse, "weekly", "daily"))
    _, artifact = retrain.train_challenger(settings, frame, folder / "champion", "2026-01-01T00:00:00")
    Registry.from_settings(settings).register(artifact, alias="champion")
    return folder


@pytest.fixture
def project(planted, tmp_path) -> Path:
    """A copy of ``planted``'s warehouse and store (the store's model files stay in ``planted``)."""
    shutil.copy(planted / "wh.duckdb", tmp_path / "wh.duckdb")
    shutil.copy(planted / "load.csv", tmp_path / "load.csv")
    copy_store(planted / "mlflow" / "mlflow.db", tmp_path / "mlflow")
    return tmp_path


def daily(settings) -> pd.DataFrame:
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        return load_series(warehouse, settings.series_id, "daily")


@slow
def test_both_versions_are_scored_on_the_same_recent_folds(project):
    """Known answer: a naive forecast is the cutoff's value for every day of its fold."""
    settings = settings_for(project)
    frame = comparison.prepare_frame(daily(settings))
    registry = Registry.from_settings(settings)
    champion = load_artifact(registry.artifact(1, project))
    cutoffs = retrain.recent_cutoffs(frame["ds"], 7, 3, 14)
    assert [c.date().isoformat() for c in cutoffs] == ["2026-04-19", "2026-04-26", "2026-05-03"]  # last day 2026-05-10
    scores = retrain.score_versions(frame, {1: champion, 7: champion}, cutoffs, 7)
    assert scores[7] == replace(scores[1], version=7)  # one backtest, the same folds
    y = frame.set_index("ds")["y"]
    by_hand = [float((y[c + DAY:c + 7 * DAY] - y[c]).abs().mean()) for c in cutoffs]
    assert scores[1].model == "naive" and scores[1].fold_mae == pytest.approx(by_hand)
    assert scores[1].mae == pytest.approx(np.mean(by_hand))
    assert 0 <= scores[1].coverage_80 <= scores[1].coverage_95 <= 1


@slow
def test_a_clearly_better_challenger_is_promoted_and_the_decision_recorded_and_sent(project):
    settings = settings_for(project)
    with smtp_server() as smtp:
        settings = settings_for(project, alert_email_to="oncall@example.com", alert_email_from="m@example.com",
                                smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_starttls=False)
        run = retrain.run_rule(settings, T0, [], project / "retrain", link="site/monitoring.html")
        decision = run.decision
        assert run.due.triggered_by == "schedule" and decision is not None and decision.outcome == "promoted"
        assert (decision.champion.model, decision.challenger.model) == ("naive", "seasonal_naive")
        assert decision.challenger.mae < 0.5 * decision.champion.mae
        assert decision.cutoffs == ("2026-04-19T00:00:00", "2026-04-26T00:00:00", "2026-05-03T00:00:00")
        assert decision.message.startswith("promoted version 2: challenger version 2 MAE ")
        assert run.delivered == {"email": "sent"} and smtp.subjects == [
            "[retraining] version 2 of demand-forecast is the new champion"]
    registry = Registry.from_settings(settings)
    assert registry.get("champion").version == 2 and registry.history() == [1]
    tags = registry.get(2).lineage
    assert (tags["decision"], tags["decision_trigger"], tags["decided_at"]) == ("promoted", "schedule",
                                                                              "2026-03-03T08:00:00")
    assert float(tags["decision_challenger_mae"]) == decision.challenger.mae
    assert tags["data_sha256"] == comparison.frame_sha256(comparison.prepare_frame(daily(settings)))
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        (stored,) = warehouse.query("select_model_decisions", ["weekly"]).to_dict("records")
    assert (stored["outcome"], stored["challenger_version"], stored["folds"]) == ("promoted", 2, 3)
    assert stored["message"] == decision.message and json.loads(stored["delivered"]) == {"email": "sent"}
    # a day later the rule is not due, and says so without training anything
    later = retrain.run_rule(settings, T0 + DAY, [], project / "retrain")
    assert later.decision is None and later.summary().startswith("retraining not due: the last decision was 24 hours")


@slow
def test_an_equal_challenger_is_kept_by_the_margin(project):
    """Trained with the champion's models on the same data, the challenger selects and calibrates
    what the champion did: equal scores, which the margin does not let through."""
    settings = settings_for(project, daily_models="naive")
    decision = retrain.make_decision(settings, daily(settings), T0, retrain.check_due(T0, (), None, (), 7),
                                     project / "retrain")
    assert decision.outcome == "kept" and decision.champion.mae == decision.challenger.mae
    assert decision.message == (f"kept version 1: challenger version 2 MAE {decision.challenger.mae:.4g} vs champion "
                                f"version 1 MAE {decision.champion.mae:.4g} on the same 3 folds; needs 2% lower (it is "
                                "equal)")
    registry = Registry.from_settings(settings)
    assert registry.get("champion").version == 1 and registry.get("challenger").version == 2
    assert registry.get(2).lineage["decision"] == "kept"


@slow
def test_a_challenger_that_cannot_be_trained_is_a_failed_decision_and_the_champion_stays(project, capsys):
    settings = settings_for(project, daily_folds=200)  # more folds than the series holds
    down = alerts.EmailChannel("127.0.0.1", free_port(), "m@example.com", ("oncall@example.com",), starttls=False,
                               timeout=2)
    run = retrain.run_rule(settings, T0, [{"key": "accuracy:naive", "status": "red"}], project / "retrain",
                           channels=[down])
    decision = run.decision
    assert run.summary().splitlines()[1].startswith("  message not sent via email: e-mail not sent: cannot connect")
    assert json.loads(json.dumps(run.as_record()))["decision"]["outcome"] == "failed"
    assert (decision.outcome, decision.triggered_by, decision.red_signals) == ("failed", "schedule, red",
                                                                                ("accuracy:naive",))
    assert decision.message.startswith("no challenger was promoted: the challenger could not be trained "
                                       "(SeriesNotAnalysableError: ")
    assert "lower daily_folds or daily_horizon" in decision.message
    assert decision.message.endswith("; version 1 stays champion")
    assert "Traceback" in capsys.readouterr().err  # the cycle's log has the details
    registry = Registry.from_settings(settings)
    assert [v.version for v in registry.versions()] == [1] and registry.get("champion").version == 1
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        (stored,) = warehouse.query("select_model_decisions", ["weekly"]).to_dict("records")
    assert (stored["outcome"], stored["champion_version"], stored["folds"]) == ("failed", 1, 0)
    assert pd.isna(stored["challenger_version"]) and stored["red_signals"] == "accuracy:naive"
    # the same red signal does not trigger again; the schedule does, a week later
    assert not retrain.run_rule(settings, T0 + DAY, [{"key": "accuracy:naive", "status": "red"}], project).due.due


@slow
def test_a_challenger_that_cannot_be_scored_is_tagged_failed(project):
    settings = settings_for(project, retrain_folds=40)  # more scoring folds than the series holds
    decision = retrain.make_decision(settings, daily(settings), T0, retrain.check_due(T0, (), None, (), 7),
                                     project / "retrain")
    assert decision.outcome == "failed" and decision.challenger_version == 2
    assert "challenger version 2 could not be scored against the champion (RetrainError: the series has 126 days" \
        in decision.message
    registry = Registry.from_settings(settings)
    assert registry.get("champion").version == 1 and registry.get(2).lineage["decision"] == "failed"


@slow
def test_without_a_champion_there_is_nothing_to_compare_with(tmp_path, planted):
    shutil.copy(planted / "wh.duckdb", tmp_path / "wh.duckdb")
    settings = settings_for(tmp_path)  # an empty store folder: no registry at all
    decision = retrain.make_decision(settings, daily(settings), T0, retrain.check_due(T0, (), None, (), 7), tmp_path)
    assert decision.outcome == "failed" and decision.champion_version is None
    assert decision.message == ("no challenger was promoted: demand-forecast has no champion to compare a challenger "
                                "with (`make run` registers the first); no version is champion")


@slow
def test_an_artifact_registered_already_is_no_challenger(project):
    """Trained at the champion's time on the same data with its models: the very same artifact."""
    settings = settings_for(project, daily_models="naive")
    decision = retrain.make_decision(settings, daily(settings), datetime(2026, 1, 1),
                                     retrain.check_due(T0, (), None, (), 7), project / "retrain")
    assert (decision.outcome, decision.challenger_version) == ("failed", 1)
    assert "the challenger's artifact is the champion's own (version 1)" in decision.message
    registry = Registry.from_settings(settings)
    assert len(registry.client.search_runs([registry.store.experiment_id(registry.client)])) == 1  # no run logged


@slow
def test_a_registry_that_cannot_be_read_is_a_failed_decision(tmp_path, planted, capsys):
    shutil.copy(planted / "wh.duckdb", tmp_path / "wh.duckdb")
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "mlflow" / "mlflow.db").write_text("not a database")
    settings = settings_for(tmp_path)
    decision = retrain.make_decision(settings, daily(settings), T0, retrain.check_due(T0, (), None, (), 7), tmp_path)
    assert decision.outcome == "failed" and decision.champion_version is None
    assert decision.message.startswith(f"no challenger was promoted: the registry sqlite:///{tmp_path}/mlflow/"
                                       "mlflow.db could not be read (")
    assert "retraining: the registry could not be read" in capsys.readouterr().err
