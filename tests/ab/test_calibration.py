"""Calibration of the A/B methods by simulation, and the table the pipeline writes once for every report."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pandas as pd
import pytest
from IPython.display import Markdown

from helpers.ab import calibration as abcalibration
from helpers.ab.inputs import ABConfig

#: The smallest table the settings allow (ab_calibration_sims >= 100): ~0.4 s.
SMALL = ABConfig(seed=3, calibration_sims=100)


def test_calibration_checks_pass_at_test_size():
    # The tolerance is three binomial standard errors: these fail if a method is miscalibrated.
    table = abcalibration.calibration_table(sims=600, seed=11)
    assert table["passes"].all(), table
    assert set(table["check"]).issuperset({"95% HDI covers the true lift", "SPRT type II error (lift = MDE)"})


def test_the_methods_settings_reach_the_simulations():
    table = abcalibration.calibration_table(sims=100, seed=3, rope=0.01, alpha=0.1, power=0.9).set_index("check")
    assert "A/A false positives of the decision rule (ROPE 0.01)" in table.index
    assert table.loc["SPRT type I error (no lift)", "nominal"] == 0.1
    assert table.loc["SPRT type II error (lift = MDE)", "nominal"] == pytest.approx(0.1)
    # the defaults are env.yaml's settings: the table the report showed before the settings were passed
    assert abcalibration.calibration_parameters(ABConfig(seed=3, calibration_sims=100)) == {
        "sims": 100, "seed": 3, "rope": 0.002, "mde": 0.1, "alpha": 0.05, "power": 0.8}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp("products") / abcalibration.PRODUCT
    return path, abcalibration.write_calibration(path, SMALL)


def test_the_written_table_is_the_one_computed_with_its_settings(written):
    path, record = written
    assert json.loads(path.read_text()) == record
    assert record["parameters"] == {"sims": 100, "seed": 3, "rope": 0.002, "mde": 0.1, "alpha": 0.05, "power": 0.8}
    assert record["seconds"] > 0 and pd.Timestamp(record["created_utc"]) <= pd.Timestamp.now("UTC").tz_localize(None)
    expected = abcalibration.calibration_table(sims=100, seed=3)
    pd.testing.assert_frame_equal(abcalibration.read_calibration(path, SMALL), expected[abcalibration.COLUMNS])
    assert isinstance(abcalibration.show_calibration(path, SMALL), pd.DataFrame)


def test_a_missing_table_names_the_command_that_makes_it(tmp_path):
    shown = abcalibration.show_calibration(tmp_path / "calibration.json", SMALL)
    assert isinstance(shown, Markdown)
    assert shown.data == (f"*The calibration table is not there yet ({tmp_path / 'calibration.json'}); "
                          "`make run` (python -m helpers.app.pipeline build) makes it.*")


def test_a_table_made_with_other_settings_is_not_shown_as_this_report_s(written):
    path, _ = written
    message = (f"The calibration table in {path} was made with ab_calibration_sims 100, ab_seed 3, but this report's "
               "settings say ab_calibration_sims 400, ab_seed 4; `make run` (python -m helpers.app.pipeline build) "
               "makes it again with them.")
    with pytest.raises(abcalibration.CalibrationUnavailable, match=re.escape(message)):
        abcalibration.read_calibration(path, replace(SMALL, calibration_sims=400, seed=4))
    assert abcalibration.show_calibration(path, replace(SMALL, rope=0.01)).data.startswith(
        f"*The calibration table in {path} was made with ab_rope 0.002, but this report's settings say ab_rope 0.01;")


@pytest.mark.parametrize("text, problem", [
    ('{"parameters": {"sims": 100', "not JSON"),
    (b"\xff\xfe{}", "not JSON"),
    ('["a", "list"]', "no parameters recorded"),
    ('{"parameters": {"sims": 100, "seed": 3}, "table": []}', "parameters ['alpha', 'mde', 'power', 'rope'] not recorded"),
    ('{"parameters": {"sims": 100, "seed": 3, "rope": 0.002, "mde": 0.1, "alpha": 0.05, "power": 0.8}, '
     '"table": [{"check": "x"}]}', "the table is not a list of rows with the columns check, nominal, observed"),
])
def test_a_file_that_is_not_a_table_says_what_is_wrong(tmp_path, text, problem):
    path = tmp_path / "calibration.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(abcalibration.CalibrationRecordError, match=re.escape(problem)):
        abcalibration.read_record(path)
    shown = abcalibration.show_calibration(path, SMALL).data
    assert shown.startswith(f"*{path} is not a calibration table (") and problem in shown
    assert shown.endswith("; `make run` (python -m helpers.app.pipeline build) makes it again.*")
