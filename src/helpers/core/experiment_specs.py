"""Typed definitions of the generated A/B experiments: the ``ab_experiments`` setting.

They are settings (``env.yaml``), so they are parsed and checked where every setting is,
when the settings are read; the generator (:mod:`helpers.ab.simulation`) and the loader
(:mod:`helpers.ab.store`) use the typed result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MAX_IDENTIFIER = 64


class ExperimentConfigError(ValueError):
    """An experiment definition in the settings is not valid; the message says what is allowed."""


@dataclass(frozen=True)
class Variant:
    name: str
    rate: float          # true conversion rate
    order_value: float   # true mean revenue of a converted user
    share: float         # planned share of users


@dataclass(frozen=True)
class ExperimentSpec:
    """One generated experiment."""

    experiment_id: str
    description: str
    control: str
    variants: tuple[Variant, ...]
    start: pd.Timestamp
    days: int
    users_per_day: float
    order_sigma: float = 0.8  # log-normal shape of order values

    @property
    def true_lifts(self) -> dict[str, float]:
        """Absolute conversion-rate difference of each variant against the control."""
        base = {v.name: v.rate for v in self.variants}[self.control]
        return {v.name: v.rate - base for v in self.variants if v.name != self.control}


def _number(where: str, value: Any, low: float, high: float | None = None) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ExperimentConfigError(f"{where} must be a number, got {value!r}") from None
    if not np.isfinite(number) or number < low or (high is not None and number > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ExperimentConfigError(f"{where} must be {bound}, got {value!r}")
    return number


def _identifier(where: str, value: Any) -> str:
    text = str(value).strip()
    if not text or len(text) > MAX_IDENTIFIER or not all(c.isalnum() or c in "_-" for c in text):
        raise ExperimentConfigError(f"{where} must be 1-{MAX_IDENTIFIER} letters, digits, '_' or '-', got {value!r}")
    return text


def parse_specs(raw: Any) -> tuple[ExperimentSpec, ...]:
    """Typed experiment definitions from the ``ab_experiments`` setting (a mapping or YAML text)."""
    import yaml

    if isinstance(raw, str):
        try:
            raw = yaml.safe_load(raw) if raw.strip() else {}
        except yaml.YAMLError as exc:
            raise ExperimentConfigError(f"ab_experiments is not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ExperimentConfigError("ab_experiments must map experiment ids to definitions")
    specs = []
    for experiment_id, body in raw.items():
        experiment_id = _identifier("experiment id", experiment_id)
        where = f"ab_experiments.{experiment_id}"
        if not isinstance(body, dict) or not isinstance(body.get("variants"), dict):
            raise ExperimentConfigError(f"{where} needs a 'variants' mapping of name: {{rate, order_value}}")
        names = [_identifier(f"{where} variant", n) for n in body["variants"]]
        if len(names) < 2:
            raise ExperimentConfigError(f"{where} needs at least two variants, got {names}")
        shares = body.get("allocation") or [1 / len(names)] * len(names)
        if len(shares) != len(names):
            raise ExperimentConfigError(f"{where}.allocation needs one share per variant ({len(names)})")
        shares = [_number(f"{where}.allocation", s, 0.0, 1.0) for s in shares]
        if abs(sum(shares) - 1) > 1e-6:
            raise ExperimentConfigError(f"{where}.allocation must sum to 1, got {sum(shares)}")
        variants = []
        for name, share, (_, v) in zip(names, shares, body["variants"].items()):
            if not isinstance(v, dict):
                raise ExperimentConfigError(f"{where}.variants.{name} needs rate and order_value")
            variants.append(Variant(name, _number(f"{where}.variants.{name}.rate", v.get("rate"), 0.0, 1.0),
                                    _number(f"{where}.variants.{name}.order_value", v.get("order_value", 0), 0.0),
                                    share))
        control = str(body.get("control", names[0]))
        if control not in names:
            raise ExperimentConfigError(f"{where}.control {control!r} is not one of its variants {names}")
        try:
            start = pd.Timestamp(str(body.get("start", "2026-01-05")))
        except ValueError:
            raise ExperimentConfigError(f"{where}.start must be a date, got {body.get('start')!r}") from None
        specs.append(ExperimentSpec(
            experiment_id, str(body.get("description", "")), control, tuple(variants), start,
            int(_number(f"{where}.days", body.get("days", 14), 1, 365)),
            _number(f"{where}.users_per_day", body.get("users_per_day", 1000), 1.0),
            _number(f"{where}.order_sigma", body.get("order_sigma", 0.8), 0.0, 5.0),
        ))
    return tuple(specs)
