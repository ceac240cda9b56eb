"""The landing page's findings, read from products like those a build writes (tests/app/test_pipeline.py
checks them against a real build's products)."""

from __future__ import annotations

import json
from datetime import datetime

from helpers.app import findings as fd
from helpers.core.settings import load_settings
from helpers.lifecycle import decisions
from helpers.warehouse import Warehouse
from tests.lifecycle.test_decisions import made

INGEST = {"source_file": "/data/elecdemand.csv.gz", "finished_at": "2026-12-02T11:57:41.675041", "rows_read": 17520,
          "rows_loaded": 17500, "rows_quarantined": 20, "counts": {"missing_value": 12, "out_of_range": 8, "gap": 0}}
HYPOTHESES = {"family": "f", "correction": "holm", "hypotheses": [
    {"id": "H1", "tested": True, "rejected": True, "p_adjusted": 3e-40},
    {"id": "H2", "tested": True, "rejected": False, "p_adjusted": 0.2554},
    {"id": "H3", "tested": False, "rejected": False, "p_adjusted": None}]}
SELECTION = {"selected": "ets_calendar", "metrics": {"ets_calendar": {"rmse": 13.850481704178579},
                                                     "seasonal_naive": {"rmse": 21.392}}}
REGISTRATION = {"note": "this run registered version 1 of demand-forecast as champion (the first)"}
VERDICT = {"experiment_id": "checkout", "control": "control", "sample_ratio_mismatch": False, "analysable": True,
           "variants": [{"variant": "one_page", "decision": "better", "p_beat_control": 0.998, "lift": 0.0186,
                         "lift_low": 0.0054, "lift_high": 0.0318},
                        {"variant": "b", "decision": "undecided", "p_beat_control": 0.317, "lift": -0.0025,
                         "lift_low": -0.013, "lift_high": 0.0079}]}
SIGNALS = {"format": 1, "as_of": "2026-12-03T06:15:00", "series_id": "s", "last_actual": "2026-12-02",
           "signals": [{"key": "accuracy:ets", "status": "orange", "value": 1.3041},
                       {"key": "coverage_95:ets", "status": "green", "value": 0.02},
                       {"key": "drift:y_mean", "status": "grey", "value": None}], "drift_ks_pvalues": {}}


def _write(folder, name, payload):
    path = folder / name
    path.write_text(json.dumps(payload))
    return path


def _sources(tmp_path, **changes):
    sources = fd.Sources(ingest=_write(tmp_path, "ingest.json", INGEST),
                         hypotheses=_write(tmp_path, "results.json", HYPOTHESES),
                         selection=_write(tmp_path, "selection.json", SELECTION),
                         registration=_write(tmp_path, "registration.json", REGISTRATION),
                         verdicts={"checkout": _write(tmp_path, "verdict.json", VERDICT)},
                         signals=_write(tmp_path, "signals.json", SIGNALS),
                         monitoring_link="../monitoring/monitoring.html",
                         decisions=lambda: [made("kept").__dict__ | {"decided_at": datetime(2026, 3, 3, 8),
                                                                    "outcome": "kept", "triggered_by": "schedule"}])
    for key, value in changes.items():
        setattr(sources, key, value)
    return sources


def test_each_finding_states_its_numbers_and_links_its_report(tmp_path):
    found = {f.topic: f for f in fd.findings(_sources(tmp_path))}
    assert list(found) == ["Data quality", "Hypotheses", "Forecast model", "A/B experiment checkout", "Monitoring",
                           "Retraining"]
    assert found["Data quality"].text == (
        "The latest ingest (2026-12-02, elecdemand.csv.gz) read 17,520 rows: 17,500 loaded, 20 quarantined (0.11%); "
        "problems found: 12 missing value, 8 out of range.")
    assert found["Hypotheses"].text == (
        "1 of 2 tested null hypotheses rejected after Holm adjustment: H1 (p < 0.001). Not rejected: H2 (p = 0.255). "
        "Not tested (the series lacks their data): H3.")
    assert found["Forecast model"].text == (
        "ets_calendar was selected: RMSE 13.9 on the evaluation folds against 21.4 for seasonal naive, 35.3% lower "
        "(ratio 0.647). Model registry: this run registered version 1 of demand-forecast as champion (the first).")
    assert found["A/B experiment checkout"].text == (
        "one_page: ship it (P(beat control) 99.8%, lift +0.54 pp to +3.18 pp); b: undecided (P(beat control) 31.7%, "
        "lift -1.3 pp to +0.79 pp).")
    assert found["Monitoring"].text == (
        "The last operating cycle (2026-12-03 06:15) gave 3 monitoring signals: 1 orange, 1 green, 1 grey (not judged: "
        "no data yet, or too little). Needing attention: accuracy:ets (orange, 1.3).")
    assert found["Retraining"].text.startswith("2026-03-03 08:00: kept (triggered by schedule): Kept version 1: "
                                               "challenger version 2 MAE 12.3")
    assert [f.link for f in found.values()] == [
        "data_quality.html", "hypothesis_tests.html", "model_comparison.html", "bayesian_ab-checkout.html",
        "../monitoring/monitoring.html", "../monitoring/monitoring.html"]


def test_without_a_cycle_monitoring_and_retraining_say_so(tmp_path):
    found = fd.findings(_sources(tmp_path, signals=tmp_path / "absent.json", decisions=None))
    assert [(f.topic, f.link) for f in found[-2:]] == [("Monitoring", None), ("Retraining", None)]
    assert found[-2].text.startswith("No operating cycle has run yet") and "no retraining decision" in found[-1].text
    cycle_no_decision = fd.findings(_sources(tmp_path, decisions=lambda: []))
    assert cycle_no_decision[-1].text == "No retraining decision yet."


def test_a_pipeline_without_a_product_has_no_finding_and_a_missing_or_broken_one_says_so(tmp_path):
    assert [f.topic for f in fd.findings(fd.Sources())] == ["Monitoring", "Retraining"]
    broken = _write(tmp_path, "broken.json", {"selected": "x"})
    (tmp_path / "garbled.json").write_text("{not json")
    found = {f.topic: f.text for f in fd.findings(fd.Sources(
        ingest=tmp_path / "none.json", hypotheses=tmp_path / "garbled.json", selection=broken,
        verdicts={"x": tmp_path / "none.json"}))}
    assert found["Data quality"] == "No ingest report was found."
    assert found["Hypotheses"].startswith("Could not be read (JSONDecodeError: ")
    assert found["Forecast model"] == "Could not be read (KeyError: 'metrics')."
    assert found["A/B experiment x"] == "No verdict was found."


def test_the_wording_of_other_outcomes():
    assert fd.data_quality(INGEST | {"rows_quarantined": 0, "counts": {}}).endswith(
        "0 quarantined (0%); no problem found.")
    assert fd.hypotheses({"correction": "fdr_bh", "hypotheses": [
        {"id": "H2", "tested": True, "rejected": False, "p_adjusted": 0.5}]}) == (
        "0 of 1 tested null hypotheses rejected after Benjamini-Hochberg adjustment. Not rejected: H2 (p = 0.5).")
    worse = {"selected": "naive", "metrics": {"naive": {"rmse": 30.0}, "seasonal_naive": {"rmse": 20.0}}}
    assert "against 20 for seasonal naive, 50% higher (ratio 1.5)." in fd.model(worse, None)
    assert fd.model({"selected": "a", "metrics": {"a": {"rmse": 1.0}}}, {}).endswith(
        "(seasonal naive was not compared).")
    assert fd.experiment(VERDICT | {"sample_ratio_mismatch": True}).startswith("Sample ratio mismatch")
    assert fd.experiment({"analysable": False, "message": "no users"}) == "Not analysable: no users."
    assert fd.experiment(VERDICT | {"variants": []}) == "No variant besides the control."
    assert fd.experiment(VERDICT | {"variants": [VERDICT["variants"][0] | {"decision": "worse"}]}).startswith(
        "one_page: do not ship it")
    calm = SIGNALS | {"signals": [{"key": "accuracy:ets", "status": "green", "value": 1.0}]}
    assert fd.monitoring(calm) == "The last operating cycle (2026-12-03 06:15) gave 1 monitoring signals: 1 green."


def test_retraining_decisions_are_read_from_the_warehouse_read_only(tmp_path):
    settings = load_settings("test", series_id="s", warehouse_path=str(tmp_path / "wh.duckdb"))
    with Warehouse.from_settings(settings) as warehouse:
        read = fd.warehouse_decisions(settings)
        decisions.record(warehouse, made("kept"), [])
    [row] = read()
    assert row["outcome"] == "kept"
    assert fd.retraining([row]).startswith("2026-03-03 08:00: kept (triggered by schedule)")


def test_unreadable_signals_say_so(tmp_path):
    (tmp_path / "signals.json").write_text("{")
    [*_, last] = fd.findings(fd.Sources(signals=tmp_path / "signals.json"))
    assert last.topic == "Monitoring" and last.text.startswith("The last cycle's signals could not be read")
