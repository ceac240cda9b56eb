"""Experiment generation, checks on a user's file, SRM, and the load on both backends."""

from __future__ import annotations

import pytest

from helpers.ab import simulation, store
from helpers.core import experiment_specs
from helpers.data.quality import DataQualityError
from tests.ab.builders import SPEC, file_rows


def test_plans_are_stored_with_the_experiment_and_read_back(warehouse):
    plans = {"e1": experiment_specs.ExperimentPlan("e1", "treat", {"control": 0.7, "treat": 0.3}, 0.05, "onboarding")}
    store.load_experiments(warehouse, file_rows(), "upload.csv", plans)
    info = store.experiment_info(warehouse, "e1")
    assert info["plan"] == plans["e1"] and info["control"] == "treat"
    store.load_experiments(warehouse, file_rows(), "upload.csv")  # no plan: the defaults
    assert store.experiment_info(warehouse, "e1")["plan"] == experiment_specs.ExperimentPlan("e1", "control")
    before = warehouse.table_counts()
    for bad, message in (({"e2": experiment_specs.ExperimentPlan("e2")}, r"names experiments \['e2'\]"),
                         ({"e1": experiment_specs.ExperimentPlan("e1", None, {"control": 0.5, "x": 0.5})},
                          "give every variant its planned share")):
        with pytest.raises(DataQualityError, match=message):
            store.load_experiments(warehouse, file_rows(), "upload.csv", bad)
    assert warehouse.table_counts() == before


def test_plan_files_are_parsed_and_checked(tmp_path):
    path = tmp_path / "plans.yaml"
    path.write_text("e1:\n  control: control\n  allocation: {control: 0.7, treat: 0.3}\n  baseline_rate: 0.04\n")
    assert store.read_plans(path) == {"e1": experiment_specs.ExperimentPlan("e1", "control",
                                                                           {"control": 0.7, "treat": 0.3}, 0.04)}
    path.write_text("e1:\n  allocation: [0.7, 0.3]\n")
    with pytest.raises(experiment_specs.ExperimentConfigError, match="must map each variant to its share"):
        store.read_plans(path)
    with pytest.raises(experiment_specs.ExperimentConfigError, match="not found"):
        store.read_plans(tmp_path / "missing.yaml")


def test_load_publishes_summaries_and_replaces_an_experiment(warehouse):
    (spec,) = experiment_specs.parse_specs(SPEC)
    first = store.generate_all(warehouse, (spec,), seed=3)
    assert first.rows_loaded == first.rows_read and first.experiments == ["demo"]
    summary = store.variant_summary(warehouse, "demo", "control")
    frame = simulation.generate(spec, seed=3)
    expected = frame.groupby("variant").agg(users=("user_id", "size"), conversions=("converted", "sum"),
                                            revenue=("revenue", "sum"))
    got = summary.set_index("variant")
    assert list(got.index) == ["control", "treat"]
    assert (got["users"] == expected["users"]).all() and (got["conversions"] == expected["conversions"]).all()
    assert got["revenue"].to_numpy() == pytest.approx(expected["revenue"].to_numpy())
    cumulative = store.daily_cumulative(warehouse, "demo")
    last = cumulative.groupby("variant").tail(1).set_index("variant")
    assert (last["users"] == expected["users"]).all() and len(cumulative) == 2 * spec.days
    assert len(store.user_revenue(warehouse, "demo")) == len(frame)

    upload = store.load_experiments(warehouse, file_rows().replace({"e1": "demo"}), "upload.csv")
    assert upload.rows_quarantined == 9 and upload.experiments == ["demo"]
    assert store.variant_summary(warehouse, "demo", "control")["users"].sum() == 3  # replaced, not appended
    listing = store.experiment_list(warehouse)
    assert listing.set_index("experiment_id").loc["demo", "source"] == "upload.csv"
    assert warehouse.table_counts()["quarantine"] == 9
    with pytest.raises(LookupError, match="stored: demo"):
        store.experiment_info(warehouse, "nope")


def test_a_refused_file_changes_nothing(warehouse):
    (spec,) = experiment_specs.parse_specs(SPEC)
    store.generate_all(warehouse, (spec,), seed=3)
    before = warehouse.table_counts()
    with pytest.raises(DataQualityError):
        store.load_experiments(warehouse, file_rows().drop(columns="variant"), "bad.csv")
    with pytest.raises(DataQualityError, match="no valid rows"):
        store.load_experiments(warehouse, file_rows().iloc[[2]], "bad.csv")
    assert warehouse.table_counts() == before


