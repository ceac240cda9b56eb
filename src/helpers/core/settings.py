"""Project settings: ``env.yaml``, then the profile's overrides, then environment variables.

One source feeds both the Ploomber pipeline (as its env) and the notebooks' defaults, so a
notebook opened in JupyterLab sees the same parameters as a scheduled run.

Precedence, lowest first:

1. ``env.yaml`` at the project root;
2. ``env.<profile>.yaml`` when ``HELPERS_PROFILE=<profile>`` (e.g. ``test``);
3. ``HELPERS_<KEY>`` environment variables, one per key of ``env.yaml``;
4. explicit keyword arguments.

Every setting is checked here, once, when it is read: a value outside its allowed range
raises :class:`ConfigError` naming the setting, how to set it, the allowed values and the
value given. Nothing else in the package adjusts a setting.

Settings that describe the default series (its public-holiday calendar and hemisphere,
:data:`SERIES_BOUND`) are not carried over to another series: when ``source_file`` points
to another file and those settings were not given with it, they are left unset and
:attr:`Settings.notes` says so and how to set them.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from helpers.core.experiment_specs import ExperimentConfigError, parse_specs
from helpers.core.paths import project_root, resolve

ENV_PREFIX = "HELPERS_"
BACKENDS = ("duckdb", "snowflake")
HEMISPHERES = ("south", "north")
#: Every model the comparison knows (``helpers.forecast.models.model_catalog`` builds them).
MODEL_NAMES = ("naive", "seasonal_naive", "window_average", "ses", "holt", "holt_winters", "ets", "auto_arima",
               "sarima_grid", "mstl", "prophet", "ets_calendar", "holt_winters_calendar", "arima_workday",
               "arimax_temperature", "prophet_temperature")
#: The settings each model takes in ``model_settings``: name -> (kind, low, high) or the allowed values.
_COUNT = ("whole", 0, 10)
MODEL_OPTIONS: dict[str, dict[str, tuple]] = {
    "window_average": {"window": ("whole", 1, 10_000)},
    "ets": {"model": ("ets",)}, "ets_calendar": {"model": ("ets",)},
    **{name: {"max_p": _COUNT, "max_q": _COUNT} for name in ("auto_arima", "arima_workday", "arimax_temperature")},
    "sarima_grid": {"max_order": ("whole", 1, 4), "engine": ("choice", "statsforecast", "pmdarima"),
                    "approximation": ("flag",)},
    **{name: {"samples": ("whole", 10, 10_000), "changepoint_prior_scale": ("number", 0.0, 100.0)}
       for name in ("prophet", "prophet_temperature")},
}
#: Settings that describe the default series, not any series (see the module docstring).
SERIES_BOUND = ("holiday_country", "holiday_subdiv", "hemisphere")
#: Seasonal periods of each grain (steps); training windows must hold two of the longest.
SEASONS = {"daily": (7,), "hourly": (24, 168)}
#: Kinds of bad rows the data-quality checks report (``helpers.data.quality.ROW_KINDS``).
ERROR_KINDS = ("missing_value", "unparseable", "out_of_range", "duplicate_timestamp", "unknown_category",
               "off_frequency")
FETCH_FORMATS = ("csv", "json")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ConfigError(ValueError):
    """A setting is missing or has a value that is not allowed."""


def where(key: str) -> str:
    """How a user sets ``key``: in env.yaml or with its environment variable."""
    return f"set {key} in env.yaml or {ENV_PREFIX}{key.upper()}"


def fail(key: str, problem: str, value: Any) -> ConfigError:
    """``<key> <problem> (set <key> in env.yaml or HELPERS_<KEY>), got <value>``."""
    return ConfigError(f"{key} {problem} ({where(key)}), got {value!r}")


def _text(raw: dict[str, Any], key: str) -> str | None:
    value = raw[key]
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _required_text(raw: dict[str, Any], key: str) -> str:
    text = _text(raw, key)
    if text is None:
        raise fail(key, "must not be empty", raw[key])
    return text


def _number(raw: dict[str, Any], key: str, low: float | None = None, high: float | None = None,
            optional: bool = False, strict: bool = False) -> float | None:
    """A float in ``[low, high]`` (``(low, high)`` when ``strict``); empty is ``None`` when ``optional``."""
    text = _text(raw, key)
    if text is None:
        if optional:
            return None
        raise fail(key, "must be a number", raw[key])
    try:
        number = float(text)
    except ValueError:
        raise fail(key, "must be a number" + (" or empty" if optional else ""), raw[key]) from None
    below = low is not None and (number <= low if strict else number < low)
    above = high is not None and (number >= high if strict else number > high)
    if number != number or below or above:
        bounds = "strictly between" if strict else "between"
        rule = (f"must be {bounds} {low:g} and {high:g}" if low is not None and high is not None
                else f"must be at least {low:g}" if low is not None else f"must be at most {high:g}")
        raise fail(key, rule, raw[key])
    return number


def _whole(raw: dict[str, Any], key: str, minimum: int, maximum: int | None = None, why: str = "") -> int:
    value = raw[key]
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise fail(key, "must be a whole number", value) from None
    if number < minimum:
        raise fail(key, f"must be at least {minimum}{f' ({why})' if why else ''}", value)
    if maximum is not None and number > maximum:
        raise fail(key, f"must be at most {maximum}", value)
    return number


def _models(raw: dict[str, Any], key: str) -> str:
    names = [m.strip() for m in _required_text(raw, key).split(",") if m.strip()]
    unknown = [m for m in names if m not in MODEL_NAMES]
    if not names or unknown:
        raise fail(key, f"must be a comma-separated list of models from {', '.join(MODEL_NAMES)}; "
                        f"unknown: {unknown}", raw[key])
    return ",".join(names)


def _structured(raw: dict[str, Any], key: str) -> Any:
    """A YAML value as given; from an environment variable, its YAML or JSON text parsed ({} if empty)."""
    value = raw[key]
    if not isinstance(value, str):
        return value
    try:
        return yaml.safe_load(value) if value.strip() else {}
    except yaml.YAMLError as exc:
        raise fail(key, f"is not valid YAML/JSON: {exc}", "...") from None


def _mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    """A YAML mapping (:func:`_structured`)."""
    value = _structured(raw, key) or {}
    if not isinstance(value, dict):
        raise fail(key, "must be a mapping", value)
    return value


def _model_settings(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``model_settings``: model -> {setting: value}, each from :data:`MODEL_OPTIONS`."""
    key, given = "model_settings", _mapping(raw, "model_settings")
    checked: dict[str, dict[str, Any]] = {}
    for model, values in given.items():
        if model not in MODEL_OPTIONS:
            raise fail(key, f"has settings only for {', '.join(MODEL_OPTIONS)}; unknown model {model!r}", given)
        if not isinstance(values, dict):
            raise fail(key, f"must map {model} to its settings, e.g. {{{next(iter(MODEL_OPTIONS[model]))}: ...}}", given)
        checked[model] = {}
        for name, value in values.items():
            rule = MODEL_OPTIONS[model].get(name)
            what = f"{model}.{name}"
            if rule is None:
                raise fail(key, f"{model} takes {', '.join(MODEL_OPTIONS[model])}; unknown setting {name!r}", given)
            if rule[0] == "choice":
                if value not in rule[1:]:
                    raise fail(key, f"{what} must be one of {', '.join(rule[1:])}", value)
                checked[model][name] = value
                continue
            if rule[0] == "flag":
                if not isinstance(value, bool):
                    raise fail(key, f"{what} must be true or false", value)
                checked[model][name] = value
                continue
            if rule[0] == "ets":
                text = str(value).upper()
                if len(text) != 3 or text[0] not in "ZAM" or text[1] not in "ZAMN" or text[2] not in "ZAMN":
                    raise fail(key, f"{what} must be three letters: error Z/A/M, trend Z/A/M/N, season Z/A/M/N "
                                    "(e.g. ZZZ, AAN)", value)
                checked[model][name] = text
                continue
            kind, low, high = rule
            try:
                number = int(value) if kind == "whole" and not isinstance(value, bool) and float(value) == int(value) \
                    else float(value) if kind == "number" and not isinstance(value, bool) else None
            except (TypeError, ValueError):
                number = None
            if number is None or not low <= number <= high or (kind == "number" and number <= low):
                rule_text = (f"a whole number from {low} to {high}" if kind == "whole"
                             else f"a number above {low:g} and at most {high:g}")
                raise fail(key, f"{what} must be {rule_text}", value)
            checked[model][name] = number
    return checked


def _frequency(raw: dict[str, Any]) -> str:
    from pandas.tseries.frequencies import to_offset

    freq = _required_text(raw, "freq")
    try:
        to_offset(freq)
    except ValueError:
        raise fail("freq", "must be a pandas offset alias such as 30min, 1h, 1D or MS", raw["freq"]) from None
    return freq


def _encoding(raw: dict[str, Any]) -> str:
    """A text encoding Python knows (``codecs``); bytes-to-bytes codecs such as base64 are refused."""
    name = _required_text(raw, "encoding")
    try:
        "".encode(name)
    except LookupError:
        raise fail("encoding", "must be a text encoding such as utf-8, latin-1 or cp1252", raw["encoding"]) from None
    return name


def request_limit(raw: dict[str, Any]) -> int:
    """``max_request_bytes``, checked: the forecast service reads it alone (:func:`raw_settings`),
    without the imports the other settings' checks need."""
    # a /predict body is under 300 bytes (a model name is at most 100 characters)
    return _whole(raw, "max_request_bytes", 1024, 1 << 30)


def forecast_log_settings(raw: dict[str, Any]) -> tuple[Path, float]:
    """``forecast_log_dir`` and ``forecast_log_flush_seconds``, checked: the forecast service
    reads them alone, like :func:`request_limit`."""
    return (resolve(_required_text(raw, "forecast_log_dir")),
            _number(raw, "forecast_log_flush_seconds", 0.0, 3600.0, strict=True))


def poll_seconds(raw: dict[str, Any]) -> float:
    """``registry_poll_seconds``, checked: the forecast service reads it alone, like :func:`request_limit`."""
    return _number(raw, "registry_poll_seconds", 0.0, 86400.0, strict=True)


#: A registered model's name: MLflow refuses ``/`` and ``:``; quotes would break its search filters.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,255}")


def mlflow_settings(raw: dict[str, Any]) -> tuple[Path, str, str]:
    """``mlflow_dir``, ``registry_model`` and ``mlflow_experiment``, checked: the forecast service
    reads them alone, like :func:`request_limit`."""
    model = _required_text(raw, "registry_model")
    if not _MODEL_NAME.fullmatch(model):
        raise fail("registry_model", "must be 1 to 256 letters, digits, '.', '_' or '-', starting with a letter "
                   "or digit", raw["registry_model"])
    experiment = _required_text(raw, "mlflow_experiment")
    if len(experiment) > 500 or not experiment.isprintable():
        raise fail("mlflow_experiment", "must be at most 500 printable characters", raw["mlflow_experiment"])
    return resolve(_required_text(raw, "mlflow_dir")), model, experiment


def check_calendar(country: str, subdiv: str | None = None) -> None:
    """Raise :class:`ConfigError` naming the allowed values when the holiday calendar is unknown."""
    import holidays

    supported = holidays.list_supported_countries()
    if country not in supported:
        raise fail("holiday_country", "must be an ISO 3166 code the holidays package knows, for example "
                   f"{', '.join(sorted(supported)[:12])}, ... ('' for none)", country)
    if subdiv and subdiv not in supported[country]:
        raise fail("holiday_subdiv", f"must be a subdivision of {country}: "
                   f"{', '.join(supported[country]) or 'none'} ('' for none)", subdiv)


@dataclass(frozen=True)
class Settings:
    """Typed view of ``env.yaml``; see that file for what each key means."""

    series_id: str
    source_file: Path
    encoding: str
    timestamp_col: str
    target_col: str
    temperature_col: str | None
    workday_col: str | None
    holiday_country: str | None
    holiday_subdiv: str | None
    hemisphere: Literal["south", "north"] | None
    freq: str
    target_min: float | None
    target_max: float | None
    max_fill_steps: int
    daily_horizon: int
    daily_folds: int
    daily_min_train: int
    daily_models: str
    hourly_horizon: int
    hourly_folds: int
    hourly_min_train: int
    hourly_models: str
    max_horizon: int
    model_settings: dict[str, dict[str, Any]]
    cv_jobs: int
    cv_cache: bool
    warehouse_backend: Literal["duckdb", "snowflake"]
    warehouse_path: Path
    warehouse_wait_seconds: float
    max_request_bytes: int
    registry_poll_seconds: float
    products: Path
    reports: Path
    mlflow_dir: Path
    registry_model: str
    mlflow_experiment: str
    profile: str
    ab_experiments: dict[str, Any]
    ab_source_file: Path | None
    ab_plan_file: Path | None
    ab_seed: int
    ab_scale: float
    ab_rope: float
    ab_mde: float
    ab_alpha: float
    ab_power: float
    ab_burn_in_days: int
    ab_min_payers: int
    ab_draws: int
    ab_pymc_draws: int
    ab_pymc_chains: int
    ab_pymc: bool
    ab_calibration_sims: int
    inbox_dir: Path
    archive_dir: Path
    forecast_log_dir: Path
    forecast_log_flush_seconds: float
    intake_settle_seconds: float
    intake_medium_share: float
    intake_high_share: float
    intake_serious_kinds: tuple[str, ...]
    monitor_window_days: int
    monitor_accuracy_orange: float
    monitor_accuracy_red: float
    monitor_coverage_orange: float
    monitor_coverage_red: float
    monitor_psi_orange: float
    monitor_psi_red: float
    monitor_ks_alpha: float
    monitor_invalid_orange: float
    monitor_invalid_red: float
    fetch_url: str | None
    fetch_format: Literal["csv", "json"]
    fetch_timeout_seconds: float
    fetch_retries: int
    fetch_backoff_seconds: float
    fetch_breaker_failures: int
    fetch_breaker_cooldown_seconds: float
    fetch_token_env: str
    alert_email_to: tuple[str, ...]
    alert_email_from: str | None
    smtp_host: str | None
    smtp_port: int
    smtp_starttls: bool
    smtp_user: str | None
    smtp_password_env: str
    alert_webhook_url_env: str
    summary_weekday: str
    retrain_every_days: int
    retrain_margin: float
    retrain_folds: int
    dashboard_service_url: str
    dashboard_timeout_seconds: float
    dashboard_cache_seconds: float
    dashboard_refresh_seconds: float
    #: What reading the settings decided that the user did not set (see the module docstring).
    notes: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def keys(cls) -> list[str]:
        """The setting names (``env.yaml`` keys)."""
        return [f.name for f in fields(cls) if f.name != "notes"]

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], notes: tuple[str, ...] = ()) -> Settings:
        """Check every value of ``raw`` (see the module docstring) and type it."""
        missing = sorted(set(cls.keys()) - raw.keys())
        if missing:
            raise ConfigError(f"missing settings: {', '.join(missing)} (see env.yaml)")
        backend = (_text(raw, "warehouse_backend") or "").lower()
        if backend not in BACKENDS:
            raise fail("warehouse_backend", f"must be one of {', '.join(BACKENDS)}", raw["warehouse_backend"])
        country, subdiv = _text(raw, "holiday_country"), _text(raw, "holiday_subdiv")
        if subdiv and not country:
            raise fail("holiday_subdiv", "needs holiday_country (the country the subdivision belongs to)", subdiv)
        if country:
            check_calendar(country, subdiv)
        hemisphere = (_text(raw, "hemisphere") or "").lower() or None
        if hemisphere is not None and hemisphere not in HEMISPHERES:
            raise fail("hemisphere", f"must be {' or '.join(HEMISPHERES)} ('' for none: errors by quarter)",
                       raw["hemisphere"])
        target_min = _number(raw, "target_min", optional=True)
        target_max = _number(raw, "target_max", optional=True)
        if target_min is not None and target_max is not None and target_min > target_max:
            raise fail("target_max", f"must not be below target_min ({target_min:g})", raw["target_max"])
        counts = {
            "max_fill_steps": _whole(raw, "max_fill_steps", 0),
            "daily_horizon": _whole(raw, "daily_horizon", 1),
            # the early half of the folds selects, the later half evaluates: at least one of each
            "daily_folds": _whole(raw, "daily_folds", 2),
            "daily_min_train": _whole(raw, "daily_min_train", 2 * max(SEASONS["daily"])),
            "hourly_horizon": _whole(raw, "hourly_horizon", 1),
            "hourly_folds": _whole(raw, "hourly_folds", 2),
            "hourly_min_train": _whole(raw, "hourly_min_train", 2 * max(SEASONS["hourly"])),
            "max_horizon": _whole(raw, "max_horizon", 1, 366),
        }
        mlflow_dir, registry_model, mlflow_experiment = mlflow_settings(raw)
        return cls(
            series_id=_required_text(raw, "series_id"),
            source_file=resolve(_required_text(raw, "source_file")),
            encoding=_encoding(raw),
            timestamp_col=_required_text(raw, "timestamp_col"),
            target_col=_required_text(raw, "target_col"),
            temperature_col=_text(raw, "temperature_col"),
            workday_col=_text(raw, "workday_col"),
            holiday_country=country,
            holiday_subdiv=subdiv,
            hemisphere=hemisphere,  # type: ignore[arg-type]
            freq=_frequency(raw),
            target_min=target_min,
            target_max=target_max,
            **counts,
            daily_models=_models(raw, "daily_models"),
            hourly_models=_models(raw, "hourly_models"),
            model_settings=_model_settings(raw),
            cv_jobs=_whole(raw, "cv_jobs", 0, why="0 is one process per core"),
            cv_cache=_flag(raw, "cv_cache"),
            warehouse_backend=backend,  # type: ignore[arg-type]
            warehouse_path=resolve(_required_text(raw, "warehouse_path")),
            warehouse_wait_seconds=_number(raw, "warehouse_wait_seconds", 0, 3600),
            max_request_bytes=request_limit(raw),
            registry_poll_seconds=poll_seconds(raw),
            products=resolve(_required_text(raw, "products")),
            reports=resolve(_required_text(raw, "reports")),
            mlflow_dir=mlflow_dir, registry_model=registry_model, mlflow_experiment=mlflow_experiment,
            profile=_required_text(raw, "profile"),
            **_ab_settings(raw),
            **_operate_settings(raw),
            notes=notes,
        )

    def as_env(self) -> dict[str, str]:
        """Flat string values for Ploomber's env (``None`` becomes ``''``)."""
        out = {}
        for key in self.keys():
            value = getattr(self, key)
            out[key] = ("" if value is None else json.dumps(value, sort_keys=True, default=str)
                        if isinstance(value, dict) else ",".join(value) if isinstance(value, tuple) else str(value))
        return out


def _ab_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """The A/B settings, typed; the experiment definitions are parsed by ``helpers.core.experiment_specs``."""
    experiments = _structured(raw, "ab_experiments")
    try:
        parse_specs(experiments)
    except ExperimentConfigError as exc:
        raise ConfigError(f"{exc} ({where('ab_experiments')})") from None
    source, plans = _text(raw, "ab_source_file"), _text(raw, "ab_plan_file")
    if plans and not source:
        raise fail("ab_plan_file", "describes the experiments of ab_source_file, which is not set", plans)
    return {
        "ab_experiments": experiments or {}, "ab_source_file": resolve(source) if source else None,
        "ab_plan_file": resolve(plans) if plans else None,
        "ab_seed": _whole(raw, "ab_seed", 0),
        "ab_scale": _number(raw, "ab_scale", 0.0, 100.0, strict=True),
        "ab_rope": _number(raw, "ab_rope", 0.0, 1.0, strict=True),
        "ab_mde": _number(raw, "ab_mde", 0.0, 10.0, strict=True),
        "ab_alpha": _number(raw, "ab_alpha", 0.0, 0.5, strict=True),
        "ab_power": _number(raw, "ab_power", 0.5, 1.0, strict=True),
        "ab_burn_in_days": _whole(raw, "ab_burn_in_days", 1, 30),
        # below ~20 payers the posterior of the order values' log-scale spread has so heavy a tail
        # that revenue per user is not estimable (see helpers.ab.bayesian.revenue_draws)
        "ab_min_payers": _whole(raw, "ab_min_payers", 3),
        "ab_draws": _whole(raw, "ab_draws", 1000),
        "ab_pymc_draws": _whole(raw, "ab_pymc_draws", 100),
        "ab_pymc_chains": _whole(raw, "ab_pymc_chains", 2, why="R-hat, the convergence check, compares chains"),
        "ab_pymc": _flag(raw, "ab_pymc"),
        # the checks' tolerance is three binomial standard errors: fewer simulations say little
        "ab_calibration_sims": _whole(raw, "ab_calibration_sims", 100),
    }


def _names(raw: dict[str, Any], key: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """A comma-separated list (empty allowed), each item from ``allowed`` when given."""
    items = tuple(item.strip() for item in (_text(raw, key) or "").split(",") if item.strip())
    unknown = [item for item in items if allowed is not None and item not in allowed]
    if unknown:
        raise fail(key, f"must be a comma-separated list of {', '.join(allowed or ())} ('' for none); "
                        f"unknown: {unknown}", raw[key])
    return items


def _flag(raw: dict[str, Any], key: str) -> bool:
    value = raw[key]
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off", ""):
        return False
    raise fail(key, "must be true or false", value)


def _env_name(raw: dict[str, Any], key: str) -> str:
    """The name of an environment variable that holds a secret (the secret itself never is a setting)."""
    name = _required_text(raw, key)
    if not name.replace("_", "").isalnum() or name[0].isdigit():
        raise fail(key, "must be the name of an environment variable (letters, digits, _), not its value", "...")
    return name


def _operate_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """The operating loop's settings (``make operate``): intake, forecast log, monitoring, fetch, alerts,
    retraining."""
    def share(key: str) -> float:
        return _number(raw, key, 0.0, 1.0)

    def ordered(low_key: str, high_key: str, check: Any) -> tuple[float, float]:
        low, high = check(low_key), check(high_key)
        if high < low:
            raise fail(high_key, f"must not be below {low_key} ({low:g})", raw[high_key])
        return low, high

    medium, high = ordered("intake_medium_share", "intake_high_share", share)
    accuracy = ordered("monitor_accuracy_orange", "monitor_accuracy_red", lambda k: _number(raw, k, 1.0, 100.0))
    coverage = ordered("monitor_coverage_orange", "monitor_coverage_red", share)
    psi = ordered("monitor_psi_orange", "monitor_psi_red", lambda k: _number(raw, k, 0.0, 10.0, strict=True))
    invalid = ordered("monitor_invalid_orange", "monitor_invalid_red", share)
    fetch_format = (_text(raw, "fetch_format") or "").lower()
    if fetch_format not in FETCH_FORMATS:
        raise fail("fetch_format", f"must be one of {', '.join(FETCH_FORMATS)}", raw["fetch_format"])
    url = _text(raw, "fetch_url")
    if url is not None and not url.startswith(("http://", "https://")):
        raise fail("fetch_url", "must be an http:// or https:// address ('' for no fetch)", url)
    if url is not None and "@" in urlsplit(url).netloc:  # the value is not echoed: it holds a password
        raise fail("fetch_url", "must not carry credentials (user:password@); put a bearer token in the environment "
                   "variable named by fetch_token_env instead", "...")
    recipients = _names(raw, "alert_email_to")
    if any("@" not in r for r in recipients):
        raise fail("alert_email_to", "must be comma-separated e-mail addresses ('' for no e-mail)", raw["alert_email_to"])
    weekday = (_text(raw, "summary_weekday") or "").lower()
    if weekday not in WEEKDAYS:
        raise fail("summary_weekday", f"must be one of {', '.join(WEEKDAYS)}", raw["summary_weekday"])
    log_dir, flush_seconds = forecast_log_settings(raw)
    service_url = _required_text(raw, "dashboard_service_url").rstrip("/")
    parts = urlsplit(service_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise fail("dashboard_service_url", "must be the forecast service's http(s) address, such as "
                   "http://127.0.0.1:8000 (no path)", raw["dashboard_service_url"])
    if parts.username or parts.password:  # the value is not echoed: it holds a password
        raise fail("dashboard_service_url", "must not carry credentials (user:password@)", "...")
    return {
        "inbox_dir": resolve(_required_text(raw, "inbox_dir")),
        "archive_dir": resolve(_required_text(raw, "archive_dir")),
        "forecast_log_dir": log_dir,
        "forecast_log_flush_seconds": flush_seconds,
        "intake_settle_seconds": _number(raw, "intake_settle_seconds", 0.0, 3600.0),
        "intake_medium_share": medium, "intake_high_share": high,
        "intake_serious_kinds": _names(raw, "intake_serious_kinds", ERROR_KINDS),
        "monitor_window_days": _whole(raw, "monitor_window_days", 7, 366),
        "monitor_accuracy_orange": accuracy[0], "monitor_accuracy_red": accuracy[1],
        "monitor_coverage_orange": coverage[0], "monitor_coverage_red": coverage[1],
        "monitor_psi_orange": psi[0], "monitor_psi_red": psi[1],
        "monitor_ks_alpha": _number(raw, "monitor_ks_alpha", 0.0, 0.5, strict=True),
        "monitor_invalid_orange": invalid[0], "monitor_invalid_red": invalid[1],
        "fetch_url": url, "fetch_format": fetch_format,
        "fetch_timeout_seconds": _number(raw, "fetch_timeout_seconds", 0.0, 600.0, strict=True),
        "fetch_retries": _whole(raw, "fetch_retries", 0, 20),
        "fetch_backoff_seconds": _number(raw, "fetch_backoff_seconds", 0.0, 600.0),
        "fetch_breaker_failures": _whole(raw, "fetch_breaker_failures", 1, 100),
        "fetch_breaker_cooldown_seconds": _number(raw, "fetch_breaker_cooldown_seconds", 0.0, 7 * 86400.0),
        "fetch_token_env": _env_name(raw, "fetch_token_env"),
        "alert_email_to": recipients,
        "alert_email_from": _text(raw, "alert_email_from"),
        "smtp_host": _text(raw, "smtp_host"),
        "smtp_port": _whole(raw, "smtp_port", 1, 65535),
        "smtp_starttls": _flag(raw, "smtp_starttls"),
        "smtp_user": _text(raw, "smtp_user"),
        "smtp_password_env": _env_name(raw, "smtp_password_env"),
        "alert_webhook_url_env": _env_name(raw, "alert_webhook_url_env"),
        "summary_weekday": weekday,
        # the retraining rule (helpers.lifecycle.retrain)
        "retrain_every_days": _whole(raw, "retrain_every_days", 1, 366),
        "retrain_margin": _number(raw, "retrain_margin", 0.0, 0.5),
        "retrain_folds": _whole(raw, "retrain_folds", 1, 52),
        # the dashboard (helpers.dashboard)
        "dashboard_service_url": service_url,
        "dashboard_timeout_seconds": _number(raw, "dashboard_timeout_seconds", 0.0, 600.0, strict=True),
        "dashboard_cache_seconds": _number(raw, "dashboard_cache_seconds", 0.0, 86400.0),
        "dashboard_refresh_seconds": _number(raw, "dashboard_refresh_seconds", 0.0, 86400.0, strict=True),
    }


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    except OSError as exc:  # a folder, or a file this user may not read
        raise ConfigError(f"{path} cannot be read ({exc.strerror}); it must be a file this user can read "
                          f"(for a file of another user: `chmod a+r {path}`)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    return data


def _layers(profile: str | None, root: Path | None) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Merged settings, where each value came from, and env.yaml's own values."""
    root = root or project_root()
    base_path = root / "env.yaml"
    if not base_path.exists():
        raise ConfigError(f"no env.yaml at the project root {root}")
    base = _read_yaml(base_path)
    raw = dict(base)
    origin = {key: "env.yaml" for key in raw}
    profile = profile if profile is not None else os.environ.get(f"{ENV_PREFIX}PROFILE")
    if profile:
        profile_path = root / f"env.{profile}.yaml"
        if not profile_path.exists():
            choices = sorted(p.name[4:-5] for p in root.glob("env.*.yaml"))
            raise ConfigError(f"unknown profile {profile!r} (HELPERS_PROFILE or --profile): no {profile_path.name}; "
                              f"profiles: {choices}")
        overlay = _read_yaml(profile_path)
        raw.update(overlay)
        origin.update({key: profile_path.name for key in overlay})
    for key in list(raw):
        env_value = os.environ.get(f"{ENV_PREFIX}{key.upper()}")
        if env_value is not None:
            raw[key] = env_value
            origin[key] = f"{ENV_PREFIX}{key.upper()}"
    return raw, origin, base


def raw_settings(profile: str | None = None, root: Path | None = None) -> dict[str, Any]:
    """Merged settings before typing; ``profile`` (the ``env.<profile>.yaml`` to overlay)
    defaults to ``$HELPERS_PROFILE``."""
    return _layers(profile, root)[0]


def _unbind_series_settings(raw: dict[str, Any], origin: dict[str, str], base: dict[str, Any]) -> tuple[str, ...]:
    """Leave the default series' calendar and hemisphere unset for another series (module docstring)."""
    source = raw.get("source_file")
    if origin.get("source_file", "env.yaml") == "env.yaml" or resolve(str(source)) == resolve(
            str(base.get("source_file", source))):
        return ()
    dropped = [key for key in SERIES_BOUND if key in raw and origin.get(key, "env.yaml").endswith(".yaml")
               and str(raw[key] or "").strip()]
    for key in dropped:
        raw[key] = ""
    if not dropped:
        return ()
    return (f"source_file is {source}, not the series env.yaml describes, so its {', '.join(dropped)} "
            f"({', '.join(str(base.get(k)) for k in dropped)}) are not applied to it: calendar models are left "
            "out and segment errors are shown by quarter. Set them for your series "
            f"({'; '.join(where(k) for k in dropped)}); '' means none.",)


def load_settings(profile_file: str | None = None, **overrides: Any) -> Settings:
    """The project's settings; keyword arguments that are not ``None`` win over everything.

    ``profile_file`` picks the ``env.<name>.yaml`` overlay (default ``$HELPERS_PROFILE``);
    an override ``profile=...`` only sets the label a run reports.
    """
    raw, origin, base = _layers(profile_file, None)
    unknown = sorted(set(overrides) - raw.keys())
    if unknown:
        raise ConfigError(f"unknown settings {unknown}; allowed: {sorted(raw)}")
    for key, value in overrides.items():
        if value is not None:
            raw[key] = value
            origin[key] = "argument"
    notes = _unbind_series_settings(raw, origin, base)
    return Settings.from_mapping(raw, notes)
