"""One experiment's whole analysis as the report shows it."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.ab import report as abreport
from helpers.ab.inputs import NotAnalysable
from helpers.core.experiment_specs import ExperimentPlan
from tests.ab.builders import FAST, experiment_data


def test_report_runs_every_part_and_turns_failures_into_sentences():
    data = experiment_data([("control", 4000, 400), ("b", 4000, 470)])
    report = abreport.analyse(data, FAST)
    assert {"conversion", "revenue", "conversion_tests", "sequential", "power", "beat_over_time"} <= set(report.parts)
    text = abreport.decision_summary(report)
    assert "**b** beats control" in text and "users to detect" in text
    assert len(abreport.data_hash(data)) == 64 and abreport.provenance_rows(data)["experiment"] == "x"
    # the hash reads the data: one more conversion changes it
    changed = experiment_data([("control", 4000, 401), ("b", 4000, 470)])
    assert abreport.data_hash(changed) != abreport.data_hash(data)

    lift = abreport.plot_lift(report)
    (histogram,) = lift.data
    draws = report.get("lift_draws")
    # percentage points: the plotted values are the first 5,000 draws of b's lift, times 100
    assert np.asarray(histogram.x) == pytest.approx(draws["lift"].to_numpy()[:5000] * 100)
    rope = [s for s in lift.layout.shapes if s.type == "rect"][0]
    assert (rope.x0, rope.x1) == pytest.approx((-FAST.rope * 100, FAST.rope * 100))

    (line,) = abreport.plot_beat_over_time(report).data
    over_time = report.get("beat_over_time")
    assert list(line.y) == pytest.approx(over_time["P(beat control)"].tolist())
    assert list(line.y)[-1] > 0.99  # 11.75% against 10% on 4,000 users each: b is credibly better

    sequential = report.get("sequential")
    llr, p_value = abreport.plot_sequential(report).data
    assert list(llr.y) == pytest.approx(sequential.paths["llr"].tolist())
    assert list(p_value.y) == pytest.approx(sequential.paths["msprt_p"].tolist())
    assert len(llr.y) == 4 - FAST.burn_in_days  # four days, the burn-in left out

    empty = abreport.analyse(experiment_data([("control", 0, 0), ("b", 50, 5)]), FAST)
    assert empty.get("conversion") is None
    assert "cannot be analysed: the control variant" in abreport.decision_summary(empty)
    assert "has no users" in empty.show("power").data


@pytest.mark.slow
def test_report_pymc_part_and_a_revenue_model_without_payers():
    report = abreport.analyse(experiment_data([("control", 1500, 150), ("b", 1500, 180)]), FAST)
    abreport.run_pymc(report)
    assert report.get("cross_check")["agree"].all()
    diagnostics = report.get("revenue_diagnostics")
    assert diagnostics.loc["revenue_per_user[b]", "median"] == pytest.approx(
        diagnostics.loc["revenue_per_user[b]", "closed-form median"], rel=0.05)
    figure = abreport.plot_posterior(report)
    titles = [axis.get_title() for axis in figure.axes]
    assert titles == ["p\ncontrol", "p\nb"], titles  # one panel per variant, control first
    few = abreport.analyse(experiment_data([("control", 100, 2), ("b", 100, 1)]), FAST)
    abreport.run_pymc(few)
    assert few.get("revenue_diagnostics") is None
    assert "'control', 'b' have fewer than 20 paying users (ab_min_payers)" in few.show("revenue_diagnostics").data


def test_without_pymc_the_report_says_the_models_were_left_out_and_how_to_fit_them():
    from dataclasses import replace

    report = abreport.analyse(experiment_data([("control", 2000, 200), ("b", 2000, 240)]), replace(FAST, pymc=False))
    abreport.run_pymc(report)
    for part in ("conversion_diagnostics", "cross_check", "pymc_conversion", "revenue_diagnostics"):
        assert report.get(part) is None
        assert "ab_pymc is false; set ab_pymc: true in env.yaml or HELPERS_AB_PYMC=true" in report.show(part).data
    assert report.get("conversion") is not None  # the closed form is all there


def test_the_report_tests_the_sample_ratio_against_the_planned_split():
    """A 70/30 experiment delivered exactly 7000/3000 is healthy; the old report tested every
    experiment against equal shares and flagged it (chi-square 1600)."""
    rows = [("control", 7000, 700), ("b", 3000, 300)]
    planned = abreport.analyse(experiment_data(rows, plan=ExperimentPlan("x", "control", {"control": 0.7, "b": 0.3})), FAST)
    assert not planned.srm["mismatch"] and planned.srm["chi2"] == pytest.approx(0.0)
    assert "planned split 70%/30%" in planned.srm["message"]
    unplanned = abreport.analyse(experiment_data(rows), FAST)  # no allocation stored: equal shares, and it says so
    assert unplanned.srm["mismatch"] and unplanned.srm["chi2"] == pytest.approx(1600.0)
    assert "no planned allocation is stored" in unplanned.srm["message"]


def test_a_bug_in_an_analysis_step_fails_the_report(monkeypatch):
    """Only NotAnalysable becomes a sentence; a ValueError from a bug must propagate (the old
    report caught ValueError and ZeroDivisionError and printed them in italics)."""
    def broken(*args, **kwargs):
        raise ValueError("bug: operands could not be broadcast together")

    monkeypatch.setattr(abreport.fq, "conversion_tests", broken)
    with pytest.raises(ValueError, match="bug: operands"):
        abreport.analyse(experiment_data([("control", 4000, 400), ("b", 4000, 470)]), FAST)
    assert not issubclass(NotAnalysable, ValueError)


def test_provenance_names_the_load_run(tmp_path):
    data = experiment_data([("control", 100, 10), ("b", 100, 12)])
    report = tmp_path / "experiments.json"
    report.write_text('[{"run_id": "r1", "rows_loaded": 200, "rows_quarantined": 0, "experiments": ["x"]}]')
    assert abreport.provenance_rows(data, str(report))["load run"].startswith("r1 (200 rows loaded")


def test_the_verdict_record_has_each_variant_s_decision(tmp_path):
    """What the reports' landing page reads (helpers.app.findings)."""
    import json

    report = abreport.analyse(experiment_data([("control", 4000, 400), ("b", 4000, 520)]), FAST)
    path = abreport.write_verdict(report, tmp_path / "ab" / "verdict-x.json")
    record = json.loads(path.read_text())
    assert (record["control"], record["sample_ratio_mismatch"], record["analysable"]) == ("control", False, True)
    [variant] = record["variants"]
    conversion = report.get("conversion").iloc[1]
    assert variant == {"variant": "b", "decision": conversion["decision"],
                       "p_beat_control": pytest.approx(conversion["P(beat control)"]),
                       "lift": pytest.approx(conversion["lift"]), "lift_low": pytest.approx(conversion["lift HDI low"]),
                       "lift_high": pytest.approx(conversion["lift HDI high"])}
    empty = abreport.verdict(abreport.analyse(experiment_data([("control", 0, 0), ("b", 50, 5)]), FAST))
    assert not empty["analysable"] and "the control variant" in empty["message"] and empty["variants"] == []
