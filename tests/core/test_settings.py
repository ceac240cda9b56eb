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
    assert settings.encoding == "utf-8" and settings.max_request_bytes == 65536
    assert settings.mlflow_dir == project_root() / "data" / "mlflow"
    assert settings.registry_model == settings.mlflow_experiment == "demand-forecast"


def test_the_mlflow_settings_are_read_alone_for_the_service(clean_env, monkeypatch, tmp_path):
    from helpers.core.settings import mlflow_settings

    assert load_settings("test").mlflow_dir == project_root() / "products-test" / "mlflow"  # the test profile's
    monkeypatch.setenv("HELPERS_MLFLOW_DIR", str(tmp_path))
    assert mlflow_settings(raw_settings()) == (tmp_path, "demand-forecast", "demand-forecast")


def test_the_service_reads_its_body_limit_alone_without_pandas(clean_env, monkeypatch):
    """The forecast service checks max_request_bytes from the raw settings; importing pandas for
    the others would cost it about 90 MB of memory."""
    import os
    import subprocess
    import sys

    code = ("import sys; from helpers.core.settings import raw_settings, request_limit; "
            "print(request_limit(raw_settings()), 'pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HELPERS_MAX_REQUEST_BYTES": "2048"})
    assert done.stdout.split() == ["2048", "False"], done.stderr


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
    ({"max_fill_steps": -1}, "max_fill_steps must be at least 0"),
    ({"target_min": "low"}, "must be a number"),
    ({"target_col": " "}, "must not be empty"),
    ({"colour": "blue"}, "unknown settings"),
    ({"holiday_country": "XX"}, "holiday_country must be an ISO 3166 code .* got 'XX'"),
    ({"holiday_subdiv": "Atlantis"}, "subdivision of AU: ACT, NSW"),
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
    (tmp_path / "env.yaml").unlink()
    (tmp_path / "env.yaml").mkdir()  # IsADirectoryError was a traceback from every command
    with pytest.raises(ConfigError, match=r"env.yaml cannot be read \(Is a directory\); it must be a file this "
                                          r"user can read \(for a file of another user: `chmod a\+r "):
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


def test_the_issue_s_example_message(clean_env):
    with pytest.raises(ConfigError) as caught:
        load_settings(daily_folds=1)
    assert str(caught.value) == ("daily_folds must be at least 2 (set daily_folds in env.yaml or HELPERS_DAILY_FOLDS), "
                                 "got 1")


@pytest.mark.parametrize("key, value, rule", [
    ("series_id", " ", "must not be empty"),
    ("encoding", "klingon", "must be a text encoding such as utf-8, latin-1 or cp1252"),
    ("encoding", "base64", "must be a text encoding such as utf-8, latin-1 or cp1252"),  # bytes to bytes
    ("encoding", "", "must not be empty"),
    ("max_request_bytes", 1023, "must be at least 1024"),
    ("max_request_bytes", 1 << 31, "must be at most 1073741824"),
    ("max_request_bytes", "64k", "must be a whole number"),
    ("registry_poll_seconds", 0, "must be strictly between 0 and 86400"),
    ("registry_poll_seconds", "10s", "must be a number"),
    ("freq", "fortnightly", "must be a pandas offset alias"),
    ("target_max", "-1", "must not be below target_min"),
    ("hemisphere", "east", "must be south or north"),
    ("daily_horizon", 0, "must be at least 1"),
    ("daily_folds", 1, "must be at least 2"),
    ("daily_min_train", 10, "must be at least 14"),
    ("hourly_folds", "two", "must be a whole number"),
    ("hourly_min_train", 100, "must be at least 336"),
    ("daily_models", "ets,magic", r"unknown: \['magic'\]"),
    ("hourly_models", " ", "must not be empty"),
    ("max_horizon", 1000, "must be at most 366"),
    ("warehouse_backend", "oracle", "must be one of duckdb, snowflake"),
    ("ab_plan_file", "plans.yaml", "describes the experiments of ab_source_file"),
    ("ab_experiments", "demo: {}", "needs a 'variants' mapping"),
    ("ab_experiments", "demo: [unclosed", "is not valid YAML/JSON"),
    ("fetch_url", "ftp://example.com/data", "must be an http:// or https:// address"),
    ("retrain_every_days", 0, "must be at least 1"),
    ("retrain_every_days", 367, "must be at most 366"),
    ("retrain_margin", "0.6", "must be between 0 and 0.5"),
    ("retrain_margin", -0.01, "must be between 0 and 0.5"),
    ("retrain_folds", "four", "must be a whole number"),
    ("retrain_folds", 0, "must be at least 1"),
    ("registry_model", "demand/forecast", "must be 1 to 256 letters, digits, '.', '_' or '-', starting with a"),
    ("registry_model", "-x", "must be 1 to 256 letters"),
    ("mlflow_experiment", "a\tb", "must be at most 500 printable characters"),
    ("mlflow_dir", " ", "must not be empty"),
    ("cv_jobs", -1, "must be at least 0 .0 is one process per core"),
    ("cv_cache", "maybe", "cv_cache"),
    ("model_settings", "[1, 2]", "must be a mapping"),
    ("model_settings", "{theta: {alpha: 1}}", "has settings only for window_average, .*unknown model 'theta'"),
    ("model_settings", "{prophet: 3}", "must map prophet to its settings"),
    ("model_settings", "{prophet: {seed: 1}}", "prophet takes samples, changepoint_prior_scale; unknown setting 'seed'"),
    ("model_settings", "{window_average: {window: 0}}", "window_average.window must be a whole number from 1"),
    ("model_settings", "{window_average: {window: 2.5}}", "window_average.window must be a whole number"),
    ("model_settings", "{prophet: {changepoint_prior_scale: 0}}", "must be a number above 0"),
    ("model_settings", "{prophet: {changepoint_prior_scale: lots}}", "must be a number above 0"),
    ("model_settings", "{ets: {model: XYZ}}", "ets.model must be three letters"),
    ("model_settings", "{a: [}", "is not valid YAML/JSON"),
    ("model_settings", "{sarima_grid: {engine: R}}", "sarima_grid.engine must be one of statsforecast, pmdarima"),
    ("model_settings", "{sarima_grid: {approximation: 1}}", "sarima_grid.approximation must be true or false"),
])
def test_every_setting_error_names_the_setting_and_how_to_set_it(clean_env, key, value, rule):
    with pytest.raises(ConfigError, match=rule) as caught:
        load_settings(**{key: value})
    assert f"(set {key} in env.yaml or HELPERS_{key.upper()})" in str(caught.value)


def test_fetch_url_with_credentials_is_refused_without_echoing_them(clean_env):
    """Credentials come from the environment only; the refused value is not repeated into a log."""
    with pytest.raises(ConfigError, match="must not carry credentials") as caught:
        load_settings(fetch_url="https://user:s3cret@example.com/data")
    assert "s3cret" not in str(caught.value) and "fetch_token_env" in str(caught.value)


# Each A/B bound from both sides: the value just outside is refused with the whole message.
AB_REFUSED = [
    ("ab_seed", -1, "must be at least 0"),
    ("ab_seed", "1.5", "must be a whole number"),
    ("ab_scale", 0, "must be strictly between 0 and 100"),
    ("ab_scale", 100, "must be strictly between 0 and 100"),
    ("ab_scale", "", "must be a number"),
    ("ab_rope", 0, "must be strictly between 0 and 1"),
    ("ab_rope", 1, "must be strictly between 0 and 1"),
    ("ab_mde", 0, "must be strictly between 0 and 10"),
    ("ab_mde", 10, "must be strictly between 0 and 10"),
    ("ab_mde", "big", "must be a number"),
    ("ab_alpha", 0, "must be strictly between 0 and 0.5"),
    ("ab_alpha", 0.5, "must be strictly between 0 and 0.5"),
    ("ab_alpha", "nan", "must be strictly between 0 and 0.5"),
    ("ab_power", 0.5, "must be strictly between 0.5 and 1"),
    ("ab_power", 1, "must be strictly between 0.5 and 1"),
    ("ab_burn_in_days", 0, "must be at least 1"),
    ("ab_burn_in_days", 31, "must be at most 30"),
    ("ab_min_payers", 2, "must be at least 3"),
    ("ab_draws", 999, "must be at least 1000"),
    ("ab_pymc_draws", 99, "must be at least 100"),
    ("ab_pymc_chains", 1, "must be at least 2 (R-hat, the convergence check, compares chains)"),
    ("ab_pymc_chains", "two", "must be a whole number"),
    ("ab_pymc", "maybe", "must be true or false"),
    ("ab_calibration_sims", 99, "must be at least 100"),
    ("ab_calibration_sims", "many", "must be a whole number"),
]


@pytest.mark.parametrize("key, value, rule", AB_REFUSED)
def test_ab_bounds_refuse_the_value_just_outside(clean_env, key, value, rule):
    with pytest.raises(ConfigError) as caught:
        load_settings(**{key: value})
    assert str(caught.value) == f"{key} {rule} (set {key} in env.yaml or HELPERS_{key.upper()}), got {value!r}"


@pytest.mark.parametrize("key, value, typed", [
    ("ab_seed", 0, 0), ("ab_scale", "0.01", 0.01), ("ab_scale", 99.9, 99.9), ("ab_rope", 0.001, 0.001),
    ("ab_rope", 0.999, 0.999), ("ab_mde", 9.99, 9.99), ("ab_alpha", 0.001, 0.001), ("ab_alpha", "0.499", 0.499),
    ("ab_power", 0.501, 0.501), ("ab_power", 0.999, 0.999), ("ab_burn_in_days", 1, 1), ("ab_burn_in_days", "30", 30),
    ("ab_min_payers", 3, 3), ("ab_draws", 1000, 1000), ("ab_pymc_draws", 100, 100), ("ab_pymc_chains", 2, 2),
    ("ab_pymc", "false", False), ("ab_pymc", "true", True), ("ab_calibration_sims", "100", 100),
])
def test_ab_bounds_accept_the_value_just_inside(clean_env, key, value, typed):
    assert getattr(load_settings(**{key: value}), key) == typed


def test_an_ab_value_from_the_environment_is_checked_the_same_way(clean_env, monkeypatch):
    monkeypatch.setenv("HELPERS_AB_POWER", "1.2")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == ("ab_power must be strictly between 0.5 and 1 (set ab_power in env.yaml or "
                                 "HELPERS_AB_POWER), got '1.2'")


def test_the_default_series_calendar_is_not_applied_to_another_file(clean_env, monkeypatch, tmp_path):
    """The README's own-file command on a series from England must not get Victoria's holidays."""
    monkeypatch.setenv("HELPERS_SOURCE_FILE", str(tmp_path / "london.csv"))
    settings = load_settings()
    assert settings.holiday_country is None and settings.holiday_subdiv is None and settings.hemisphere is None
    (note,) = settings.notes
    assert "holiday_country, holiday_subdiv, hemisphere (AU, VIC, south) are not applied" in note
    assert "HELPERS_HOLIDAY_COUNTRY" in note and "calendar models are left out" in note
    monkeypatch.setenv("HELPERS_HOLIDAY_COUNTRY", "GB")
    monkeypatch.setenv("HELPERS_HOLIDAY_SUBDIV", "ENG")
    explicit = load_settings(hemisphere="north")
    assert (explicit.holiday_country, explicit.holiday_subdiv, explicit.hemisphere) == ("GB", "ENG", "north")
    assert explicit.notes == ()
    # the default file, named explicitly, keeps its calendar
    monkeypatch.delenv("HELPERS_HOLIDAY_COUNTRY")
    monkeypatch.delenv("HELPERS_HOLIDAY_SUBDIV")
    monkeypatch.setenv("HELPERS_SOURCE_FILE", "data/elecdemand.csv.gz")
    assert load_settings().holiday_country == "AU" and load_settings().notes == ()


def test_model_names_match_the_catalog():
    from helpers.core.settings import MODEL_NAMES
    from helpers.forecast.models import model_catalog

    built = model_catalog((7,), 14, MODEL_NAMES, has_temperature=True, has_workday=True)
    assert [m.name for m in built] == list(MODEL_NAMES)


def test_model_settings_are_typed_and_reach_only_their_comparison(clean_env, monkeypatch):
    monkeypatch.setenv("HELPERS_MODEL_SETTINGS", '{"ets": {"model": "aan"}, "prophet": {"samples": "50"}}')
    settings = load_settings()
    assert settings.model_settings == {"ets": {"model": "AAN"}, "prophet": {"samples": 50}}
    from helpers.forecast.comparison import ComparisonConfig

    assert ComparisonConfig.from_settings(settings, "hourly").model_settings == {}  # no ets, no prophet there
    assert ComparisonConfig.from_settings(settings, "daily").model_settings["ets"] == {"model": "AAN"}
