"""The experiment definitions and plans (settings)."""

from __future__ import annotations

import pytest

from helpers.core import experiment_specs
from helpers.core.settings import ConfigError, load_settings
from tests.ab.builders import SPEC


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
