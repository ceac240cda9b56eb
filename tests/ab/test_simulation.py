"""The seeded experiment generator."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.ab import simulation, validation
from helpers.core import experiment_specs
from tests.ab.builders import SPEC


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
