"""Experiment generation, checks on a user's file, SRM, and the load on both backends."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.ab import __main__ as ab_cli
from helpers.ab import simulation, srm, store, validation
from helpers.app import tasks
from helpers.core import experiment_specs
from helpers.core.settings import ConfigError, load_settings
from helpers.data.quality import DataQualityError

SPEC = {"demo": {"days": 5, "users_per_day": 400, "start": "2026-01-05",
                 "variants": {"control": {"rate": 0.2, "order_value": 30}, "treat": {"rate": 0.3, "order_value": 30}}}}


def test_generator_is_seeded_and_follows_the_spec():
    (spec,) = experiment_specs.parse_specs(SPEC)
    first, again = simulation.generate(spec, seed=1), simulation.generate(spec, seed=1)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(simulation.generate(spec, seed=2))
    assert list(first.columns) == list(validation.COLUMNS) and first["user_id"].is_unique
    assert first["assigned_at"].between("2026-01-05", "2026-01-10").all()
    rates = first.groupby("variant")["converted"].mean()
    assert rates["treat"] > rates["control"]
    assert (first.loc[first["converted"] == 0, "revenue"] == 0).all()
    assert (first.loc[first["converted"] == 1, "revenue"] > 0).all()
    assert spec.true_lifts == {"treat": pytest.approx(0.1)}


def test_the_default_settings_hold_a_lift_an_aa_and_a_multi_variant_experiment(clean_env):
    specs = {s.experiment_id: s for s in experiment_specs.parse_specs(load_settings().ab_experiments)}
    assert any(any(lift > 0 for lift in s.true_lifts.values()) for s in specs.values())
    assert any(all(lift == 0 for lift in s.true_lifts.values()) for s in specs.values())
    assert any(len(s.variants) >= 3 for s in specs.values())


@pytest.mark.parametrize("change, message", [
    ({"variants": {"control": {"rate": 0.1}}}, "at least two variants"),
    ({"variants": {"a": {"rate": 1.5}, "b": {"rate": 0.1}}}, r"rate must be in \[0.0, 1.0\]"),
    ({"allocation": [0.7, 0.7]}, "must sum to 1"),
    ({"allocation": {"control": 0.5, "other": 0.5}}, r"names variants \['control', 'other'\], but the variants"),
    ({"delivered": {"control": 0.2}}, "at least two variants"),
    ({"baseline_rate": 2}, r"baseline_rate must be in \[0.0, 1.0\]"),
    ({"colour": "red"}, r"unknown keys \['colour'\]"),
    ({"control": "nobody"}, "is not one of its variants"),
    ({"days": "many"}, "days must be a number"),
    ({"start": "soon"}, "start must be a date"),
])
def test_bad_experiment_definitions_say_what_is_allowed(change, message):
    with pytest.raises(experiment_specs.ExperimentConfigError, match=message):
        experiment_specs.parse_specs({"demo": {**SPEC["demo"], **change}})


def test_bad_definitions_surface_as_config_errors(clean_env):
    with pytest.raises(ConfigError, match="needs a 'variants' mapping"):
        load_settings(ab_experiments="demo: {}")
    with pytest.raises(experiment_specs.ExperimentConfigError, match="experiment id must be"):
        experiment_specs.parse_specs({"bad id!": SPEC["demo"]})


def _file_rows() -> pd.DataFrame:
    rows = [
        ["e1", "u1", "control", "2026-01-05T10:00:00", "1", "12.5"],
        ["e1", "u2", "treat", "2026-01-05T11:00:00", "0", "0"],
        ["e1", "u3", "treat", "not a time", "0", "0"],             # unparseable
        ["e1", "u4", "treat", "2026-01-05T12:00:00", "yes", "0"],   # unknown category
        ["e1", "u5", "control", "2026-01-05T12:00:00", "0", "9"],   # revenue without conversion
        ["e1", "u6", "control", "2026-01-05T12:00:00", "1", "-3"],  # negative revenue
        ["e1", "", "control", "2026-01-05T12:00:00", "1", "3"],     # missing user
        ["e1", "u7", "control", "2026-01-05T13:00:00", "0", "0"],
        ["e1", "u7", "control", "2026-01-05T13:00:00", "0", "0"],   # exact copy: first kept
        ["e1", "u8", "control", "2026-01-05T14:00:00", "0", "0"],
        ["e1", "u8", "treat", "2026-01-05T14:00:00", "0", "0"],     # two variants: both quarantined
        ["e 1", "u9", "treat", "2026-01-05T14:00:00", "0", "0"],    # bad id characters
    ]
    return pd.DataFrame(rows, columns=list(validation.COLUMNS))


def test_file_checks_quarantine_every_bad_row_and_keep_the_count():
    result = validation.validate_experiments(_file_rows(), "upload.csv")
    assert sorted(result.clean["user_id"]) == ["u1", "u2", "u7"]
    reasons = dict(zip(result.quarantine["row_number"], result.quarantine["reasons"]))
    assert reasons == {3: "unparseable:assigned_at", 4: "unknown_category:converted", 5: "out_of_range:revenue",
                       6: "out_of_range:revenue", 7: "missing_value:user_id", 9: "duplicate_user:user_id",
                       10: "duplicate_user:user_id", 11: "duplicate_user:user_id",
                       12: "unknown_category:experiment_id"}
    assert result.rows_read == len(result.clean) + len(result.quarantine)


def test_a_missing_column_is_refused_by_name():
    with pytest.raises(DataQualityError, match=r"missing required columns \['revenue'\]"):
        validation.validate_experiments(_file_rows().drop(columns="revenue"), "upload.csv")


def test_sample_ratio_mismatch_is_flagged_below_one_in_a_thousand():
    fine = srm.sample_ratio_mismatch(pd.Series({"a": 5000, "b": 5050}))
    assert not fine["mismatch"] and fine["p_value"] > 0.1
    # chi-square by hand: (5200 - 5000)^2 / 5000 * 2 = 16, p = 6.3e-5
    broken = srm.sample_ratio_mismatch(pd.Series({"a": 5200, "b": 4800}))
    assert broken["mismatch"] and broken["message"].startswith("SAMPLE RATIO MISMATCH")
    assert broken["chi2"] == pytest.approx(16.0) and broken["p_value"] == pytest.approx(6.334e-5, rel=1e-3)
    planned = srm.sample_ratio_mismatch(pd.Series({"a": 7000, "b": 3000}), pd.Series({"a": 0.7, "b": 0.3}))
    assert not planned["mismatch"] and planned["chi2"] == pytest.approx(0.0)
    assert not srm.sample_ratio_mismatch(pd.Series({"a": 10}))["mismatch"]
    unplanned = srm.sample_ratio_mismatch(pd.Series({"a": 7000, "b": 3000, "c": 5}), pd.Series({"a": 0.7, "b": 0.3}))
    assert unplanned["mismatch"] and "c received users" in unplanned["message"]


def test_the_configured_broken_banner_is_flagged_and_a_planned_70_30_is_not(clean_env):
    """env.yaml's banner_srm is planned 50/50 and delivers 51.5/48.5: at its configured size
    (10 days x 2,000 users) the check flags it; a planned 70/30 delivered 70/30 passes."""
    specs = {s.experiment_id: s for s in experiment_specs.parse_specs(load_settings().ab_experiments)}
    banner = specs["banner_srm"]
    assert banner.plan.allocation == {"control": 0.5, "new_banner": 0.5}
    assert banner.delivered == {"control": 0.515, "new_banner": 0.485}
    users = banner.days * banner.users_per_day
    delivered = pd.Series({v: users * share for v, share in banner.delivered.items()})
    result = srm.sample_ratio_mismatch(delivered, pd.Series(banner.plan.shares(list(delivered.index))))
    assert result["mismatch"] and result["chi2"] == pytest.approx(18.0)  # 2 x 300^2 / 10,000
    generated = simulation.generate(banner, seed=load_settings().ab_seed).groupby("variant").size()
    assert srm.sample_ratio_mismatch(generated, pd.Series(banner.plan.shares(list(generated.index))))["mismatch"]
    seventy = srm.sample_ratio_mismatch(pd.Series({"control": 7000, "b": 3000}), pd.Series({"control": 0.7, "b": 0.3}))
    assert not seventy["mismatch"]


def test_plans_are_stored_with_the_experiment_and_read_back(warehouse):
    plans = {"e1": experiment_specs.ExperimentPlan("e1", "treat", {"control": 0.7, "treat": 0.3}, 0.05, "onboarding")}
    store.load_experiments(warehouse, _file_rows(), "upload.csv", plans)
    info = store.experiment_info(warehouse, "e1")
    assert info["plan"] == plans["e1"] and info["control"] == "treat"
    store.load_experiments(warehouse, _file_rows(), "upload.csv")  # no plan: the defaults
    assert store.experiment_info(warehouse, "e1")["plan"] == experiment_specs.ExperimentPlan("e1", "control")
    before = warehouse.table_counts()
    for bad, message in (({"e2": experiment_specs.ExperimentPlan("e2")}, r"names experiments \['e2'\]"),
                         ({"e1": experiment_specs.ExperimentPlan("e1", None, {"control": 0.5, "x": 0.5})},
                          "give every variant its planned share")):
        with pytest.raises(DataQualityError, match=message):
            store.load_experiments(warehouse, _file_rows(), "upload.csv", bad)
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

    upload = store.load_experiments(warehouse, _file_rows().replace({"e1": "demo"}), "upload.csv")
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
        store.load_experiments(warehouse, _file_rows().drop(columns="variant"), "bad.csv")
    with pytest.raises(DataQualityError, match="no valid rows"):
        store.load_experiments(warehouse, _file_rows().iloc[[2]], "bad.csv")
    assert warehouse.table_counts() == before


def test_command_line_loads_and_refuses(tmp_path, clean_env, monkeypatch, capsys):
    monkeypatch.setenv("HELPERS_WAREHOUSE_PATH", str(tmp_path / "w.duckdb"))
    good = tmp_path / "upload.csv"
    _file_rows().to_csv(good, index=False)
    plan = tmp_path / "plans.yaml"
    plan.write_text("e1:\n  allocation: {control: 0.5, treat: 0.5}\n")
    assert ab_cli.main(["load", str(good), "--plan", str(plan), "--control", "e1=treat"]) == 0
    assert "9 quarantined" in capsys.readouterr().out
    assert ab_cli.main(["load", str(good), "--control", "e1"]) == 2
    assert "must be EXPERIMENT=VARIANT" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    _file_rows().drop(columns="converted").to_csv(bad, index=False)
    assert ab_cli.main(["load", str(bad)]) == 2
    assert "missing required columns ['converted']" in capsys.readouterr().err
    monkeypatch.setenv("HELPERS_AB_SCALE", "0.05")
    assert ab_cli.main(["generate"]) == 0


def test_pipeline_ids_include_the_uploaded_experiments(tmp_path, clean_env, monkeypatch):
    upload = tmp_path / "upload.csv"
    _file_rows().to_csv(upload, index=False)
    monkeypatch.setenv("HELPERS_AB_SOURCE_FILE", str(upload))
    ids = tasks.experiment_ids()
    assert ids[-1] == "e1" and "checkout_flow" in ids
