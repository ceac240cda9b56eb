from __future__ import annotations

import pytest

from helpers.core.settings import ConfigError, Settings, load_settings, raw_settings
from helpers.core.paths import project_root, resolve


def test_defaults_come_from_env_yaml(clean_env):
    settings = load_settings()
    assert settings.series_id == "elecdemand" and settings.freq == "30min"
    assert settings.source_file == project_root() / "data" / "elecdemand.csv.gz"
    assert settings.warehouse_backend == "duckdb" and settings.target_min == 0.0 and settings.target_max is None
    assert settings.profile == "full"


def test_profile_overlays_env_yaml(clean_env):
    settings = load_settings("test")
    assert settings.profile == "test"
    assert settings.products == project_root() / "products-test"
    assert settings.series_id == "elecdemand"  # not in the overlay: from env.yaml


def test_environment_variables_override_files(clean_env, monkeypatch):
    monkeypatch.setenv("HELPERS_FREQ", "1h")
    monkeypatch.setenv("HELPERS_TEMPERATURE_COL", "")
    settings = load_settings()
    assert settings.freq == "1h" and settings.temperature_col is None


def test_keyword_overrides_win_and_none_is_ignored(clean_env, monkeypatch):
    monkeypatch.setenv("HELPERS_SERIES_ID", "from-env")
    assert load_settings(series_id="explicit").series_id == "explicit"
    assert load_settings(series_id=None).series_id == "from-env"


@pytest.mark.parametrize("overrides, message", [
    ({"warehouse_backend": "oracle"}, "warehouse_backend must be one of"),
    ({"max_fill_steps": "many"}, "whole number"),
    ({"max_fill_steps": -1}, ">= 0"),
    ({"target_min": "low"}, "must be a number"),
    ({"target_col": " "}, "must not be empty"),
    ({"colour": "blue"}, "unknown settings"),
    ({"holiday_country": "XX"}, "holiday_country 'XX' is not an ISO 3166 code"),
    ({"holiday_subdiv": "Atlantis"}, "allowed: ACT, NSW"),
    ({"holiday_country": "", "holiday_subdiv": "VIC"}, "holiday_subdiv needs holiday_country"),
])
def test_bad_values_are_rejected_with_what_is_allowed(clean_env, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(**overrides)


def test_unknown_profile_lists_the_profiles(clean_env):
    with pytest.raises(ConfigError, match=r"profiles: \['test'\]"):
        load_settings("nightly")


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="no env.yaml"):
        raw_settings(root=tmp_path)
    (tmp_path / "env.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        raw_settings(root=tmp_path)
    (tmp_path / "env.yaml").write_text("a: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        raw_settings(root=tmp_path)


def test_missing_keys_are_named():
    with pytest.raises(ConfigError, match="missing settings: .*freq"):
        Settings.from_mapping({"series_id": "x"})


def test_as_env_round_trips(clean_env):
    settings = load_settings()
    assert Settings.from_mapping(settings.as_env()) == settings


def test_paths_resolve_from_the_root_and_env(monkeypatch, tmp_path):
    assert resolve("data/x.csv") == project_root() / "data" / "x.csv"
    assert resolve(tmp_path) == tmp_path
    monkeypatch.setenv("HELPERS_ROOT", str(tmp_path))
    assert project_root() == tmp_path
