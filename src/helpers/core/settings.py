"""Project settings: ``env.yaml``, then the profile's overrides, then environment variables.

One source feeds both the Ploomber pipeline (as its env) and the notebooks' defaults, so a
notebook opened in JupyterLab sees the same parameters as a scheduled run.

Precedence, lowest first:

1. ``env.yaml`` at the project root;
2. ``env.<profile>.yaml`` when ``HELPERS_PROFILE=<profile>`` (e.g. ``test``);
3. ``HELPERS_<KEY>`` environment variables, one per key of ``env.yaml``;
4. explicit keyword arguments.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from helpers.core.experiment_specs import ExperimentConfigError, parse_specs
from helpers.core.paths import project_root, resolve

ENV_PREFIX = "HELPERS_"
BACKENDS = ("duckdb", "snowflake")


_POSITIVE_INTS = ("daily_horizon", "daily_folds", "daily_min_train", "hourly_horizon", "hourly_folds",
                  "hourly_min_train", "max_horizon")


class ConfigError(ValueError):
    """A setting is missing or has a value that is not allowed."""


def _optional(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _optional_float(key: str, value: Any) -> float | None:
    text = _optional(value)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"setting {key!r} must be a number or empty, got {value!r}") from None


def _whole_number(key: str, value: Any, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{key} must be >= {minimum}, got {number}")
    return number


@dataclass(frozen=True)
class Settings:
    """Typed view of ``env.yaml``; see that file for what each key means."""

    series_id: str
    source_file: Path
    timestamp_col: str
    target_col: str
    temperature_col: str | None
    workday_col: str | None
    holiday_country: str | None
    holiday_subdiv: str | None
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
    warehouse_backend: Literal["duckdb", "snowflake"]
    warehouse_path: Path
    products: Path
    reports: Path
    profile: str
    ab_experiments: dict[str, Any]
    ab_source_file: Path | None
    ab_seed: int
    ab_scale: float
    ab_rope: float
    ab_mde: float
    ab_alpha: float
    ab_power: float
    ab_draws: int
    ab_pymc_draws: int
    ab_pymc_chains: int

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        missing = sorted(known - raw.keys())
        if missing:
            raise ConfigError(f"missing settings: {', '.join(missing)} (see env.yaml)")
        backend = str(raw["warehouse_backend"]).strip().lower()
        if backend not in BACKENDS:
            raise ConfigError(f"warehouse_backend must be one of {BACKENDS}, got {raw['warehouse_backend']!r}")
        max_fill = _whole_number("max_fill_steps", raw["max_fill_steps"], minimum=0)
        counts = {key: _whole_number(key, raw[key], minimum=1) for key in _POSITIVE_INTS}
        for key in ("series_id", "timestamp_col", "target_col", "freq", "daily_models", "hourly_models"):
            if _optional(raw[key]) is None:
                raise ConfigError(f"setting {key!r} must not be empty")
        country, subdiv = _optional(raw["holiday_country"]), _optional(raw["holiday_subdiv"])
        if subdiv and not country:
            raise ConfigError("holiday_subdiv needs holiday_country")
        if country:
            try:
                check_calendar(country, subdiv)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        return cls(
            series_id=str(raw["series_id"]).strip(),
            source_file=resolve(str(raw["source_file"])),
            timestamp_col=str(raw["timestamp_col"]).strip(),
            target_col=str(raw["target_col"]).strip(),
            temperature_col=_optional(raw["temperature_col"]),
            workday_col=_optional(raw["workday_col"]),
            holiday_country=country,
            holiday_subdiv=subdiv,
            freq=str(raw["freq"]).strip(),
            target_min=_optional_float("target_min", raw["target_min"]),
            target_max=_optional_float("target_max", raw["target_max"]),
            max_fill_steps=max_fill,
            **counts,
            daily_models=str(raw["daily_models"]).strip(),
            hourly_models=str(raw["hourly_models"]).strip(),
            warehouse_backend=backend,  # type: ignore[arg-type]
            warehouse_path=resolve(str(raw["warehouse_path"])),
            products=resolve(str(raw["products"])),
            reports=resolve(str(raw["reports"])),
            profile=str(raw["profile"]).strip(),
            **_ab_settings(raw),
        )

    def as_env(self) -> dict[str, str]:
        """Flat string values for Ploomber's env (``None`` becomes ``''``)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = "" if value is None else json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict) else str(value)
        return out


def _ab_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """The A/B settings, typed; the experiment definitions are checked by ``helpers.core.experiment_specs``."""
    experiments = raw["ab_experiments"]
    if isinstance(experiments, str):
        try:
            experiments = yaml.safe_load(experiments) if experiments.strip() else {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"ab_experiments is not valid YAML/JSON: {exc}") from None
    try:
        parse_specs(experiments)
    except ExperimentConfigError as exc:
        raise ConfigError(str(exc)) from None

    def fraction(key: str, low: float, high: float) -> float:
        value = _optional_float(key, raw[key])
        if value is None or not low < value < high:
            raise ConfigError(f"{key} must be a number strictly between {low} and {high}, got {raw[key]!r}")
        return value

    source = _optional(raw["ab_source_file"])
    return {
        "ab_experiments": experiments or {}, "ab_source_file": resolve(source) if source else None,
        "ab_seed": _whole_number("ab_seed", raw["ab_seed"], minimum=0),
        "ab_scale": fraction("ab_scale", 0.0, 100.0), "ab_rope": fraction("ab_rope", 0.0, 1.0),
        "ab_mde": fraction("ab_mde", 0.0, 10.0), "ab_alpha": fraction("ab_alpha", 0.0, 0.5),
        "ab_power": fraction("ab_power", 0.5, 1.0),
        **{key: _whole_number(key, raw[key], minimum=minimum)
           for key, minimum in (("ab_draws", 1000), ("ab_pymc_draws", 100), ("ab_pymc_chains", 1))},
    }


def check_calendar(country: str, subdiv: str | None = None) -> None:
    """Raise ``ValueError`` naming the allowed values when the calendar is unknown."""
    import holidays

    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(f"holiday_country {country!r} is not an ISO 3166 code the holidays package knows; "
                         f"for example {', '.join(sorted(supported)[:12])}, ...")
    if subdiv and subdiv not in supported[country]:
        raise ValueError(f"holiday_subdiv {subdiv!r} is not a subdivision of {country}; "
                         f"allowed: {', '.join(supported[country]) or 'none'}")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    return data


def raw_settings(profile: str | None = None, root: Path | None = None) -> dict[str, Any]:
    """Merged settings before typing; ``profile`` (the ``env.<profile>.yaml`` to overlay)
    defaults to ``$HELPERS_PROFILE``."""
    root = root or project_root()
    base_path = root / "env.yaml"
    if not base_path.exists():
        raise ConfigError(f"no env.yaml at the project root {root}")
    raw = _read_yaml(base_path)
    profile = profile if profile is not None else os.environ.get(f"{ENV_PREFIX}PROFILE")
    if profile:
        profile_path = root / f"env.{profile}.yaml"
        if not profile_path.exists():
            choices = sorted(p.name[4:-5] for p in root.glob("env.*.yaml"))
            raise ConfigError(f"unknown profile {profile!r}: no {profile_path.name}; profiles: {choices}")
        raw.update(_read_yaml(profile_path))
    for key in list(raw):
        env_value = os.environ.get(f"{ENV_PREFIX}{key.upper()}")
        if env_value is not None:
            raw[key] = env_value
    return raw


def load_settings(profile_file: str | None = None, **overrides: Any) -> Settings:
    """The project's settings; keyword arguments that are not ``None`` win over everything.

    ``profile_file`` picks the ``env.<name>.yaml`` overlay (default ``$HELPERS_PROFILE``);
    an override ``profile=...`` only sets the label a run reports.
    """
    raw = raw_settings(profile_file)
    unknown = sorted(set(overrides) - raw.keys())
    if unknown:
        raise ConfigError(f"unknown settings {unknown}; allowed: {sorted(raw)}")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return Settings.from_mapping(raw)
