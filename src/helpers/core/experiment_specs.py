"""What is fixed about an A/B experiment before its data is seen, and the generated experiments.

An :class:`ExperimentPlan` is the pre-registration every experiment has, generated or
uploaded: its control, the planned split of users between variants (the sample-ratio check
tests the delivered counts against it) and, optionally, the control's expected conversion
rate (the sequential tests size their effect from it, see :mod:`helpers.ab.sequential`).
Plans come from ``ab_experiments`` in ``env.yaml`` for the generated experiments and from a
plan file (``ab_plan_file``, or ``python -m helpers.ab load FILE --plan PLAN``) for a
user's own; :func:`parse_plans` reads one.

An :class:`ExperimentSpec` adds what the simulator needs: each variant's true rate and order
value and the split the assignment actually *delivers* (``delivered``), which a broken
experiment sets apart from the planned ``allocation``.

These are settings, so they are parsed and checked where every setting is, when the
settings are read (:mod:`helpers.core.settings`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported where a date is parsed: reading settings must stay light
    import pandas as pd

MAX_IDENTIFIER = 64
PLAN_KEYS = ("control", "allocation", "baseline_rate", "description")
SPEC_KEYS = PLAN_KEYS + ("variants", "delivered", "start", "days", "users_per_day", "order_sigma")


class ExperimentConfigError(ValueError):
    """An experiment definition or plan is not valid; the message says what is allowed."""


@dataclass(frozen=True)
class ExperimentPlan:
    """The pre-registered facts of one experiment."""

    experiment_id: str
    control: str | None = None
    allocation: dict[str, float] | None = None  # planned share per variant, sums to 1; None = equal shares
    baseline_rate: float | None = None          # expected control conversion rate, fixed before the test
    description: str = ""

    def shares(self, variants: list[str]) -> dict[str, float]:
        """The planned share of each of ``variants`` (equal shares when no allocation was planned)."""
        if self.allocation is None:
            return {v: 1 / len(variants) for v in variants}
        return {v: self.allocation.get(v, 0.0) for v in variants}


@dataclass(frozen=True)
class Variant:
    name: str
    rate: float          # true conversion rate
    order_value: float   # true mean revenue of a converted user


@dataclass(frozen=True)
class ExperimentSpec:
    """One generated experiment: its plan, the truth the simulator draws from, and its size."""

    plan: ExperimentPlan
    variants: tuple[Variant, ...]
    delivered: dict[str, float]  # share of users the assignment actually gives each variant
    start: pd.Timestamp
    days: int
    users_per_day: float
    order_sigma: float = 0.8  # log-normal shape of order values

    @property
    def experiment_id(self) -> str:
        return self.plan.experiment_id

    @property
    def control(self) -> str:
        return str(self.plan.control)

    @property
    def description(self) -> str:
        return self.plan.description

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
    if not math.isfinite(number) or number < low or (high is not None and number > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ExperimentConfigError(f"{where} must be {bound}, got {value!r}")
    return number


def identifier(where: str, value: Any) -> str:
    """``value`` as an id of letters, digits, '_' and '-' (1 to 64 characters), or a clear error."""
    text = str(value).strip()
    if not text or len(text) > MAX_IDENTIFIER or not all(c.isalnum() or c in "_-" for c in text):
        raise ExperimentConfigError(f"{where} must be 1-{MAX_IDENTIFIER} letters, digits, '_' or '-', got {value!r}")
    return text


def _shares(where: str, raw: Any, names: list[str] | None) -> dict[str, float]:
    """A split as ``{variant: share}``; a list gives the shares in the order of ``names``."""
    if isinstance(raw, (list, tuple)):
        if names is None:
            raise ExperimentConfigError(f"{where} must map each variant to its share, e.g. {{control: 0.5, b: 0.5}}")
        if len(raw) != len(names):
            raise ExperimentConfigError(f"{where} needs one share per variant {names}, got {len(raw)}")
        raw = dict(zip(names, raw))
    if not isinstance(raw, Mapping) or len(raw) < 2:
        raise ExperimentConfigError(f"{where} must map at least two variants to their shares, got {raw!r}")
    shares = {identifier(f"{where} variant", k): _number(f"{where}.{k}", v, 0.0, 1.0) for k, v in raw.items()}
    if names is not None and set(shares) != set(names):
        raise ExperimentConfigError(f"{where} names variants {sorted(shares)}, but the variants are {sorted(names)}")
    total = sum(shares.values())
    if abs(total - 1) > 1e-6:
        raise ExperimentConfigError(f"{where} shares must sum to 1, got {total:g}")
    return shares


def _load_mapping(raw: Any, what: str) -> dict:
    import yaml

    if isinstance(raw, str):
        try:
            raw = yaml.safe_load(raw) if raw.strip() else {}
        except yaml.YAMLError as exc:
            raise ExperimentConfigError(f"{what} is not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ExperimentConfigError(f"{what} must map experiment ids to definitions, got {type(raw).__name__}")
    return raw


def _plan(experiment_id: str, body: Mapping, where: str, names: list[str] | None) -> ExperimentPlan:
    control = body.get("control")
    if control is not None:
        control = identifier(f"{where}.control", control)
        if names is not None and control not in names:
            raise ExperimentConfigError(f"{where}.control {control!r} is not one of its variants {names}")
    allocation = body.get("allocation")
    baseline = body.get("baseline_rate")
    return ExperimentPlan(
        experiment_id, control,
        _shares(f"{where}.allocation", allocation, names) if allocation is not None else None,
        _number(f"{where}.baseline_rate", baseline, 0.0, 1.0) if baseline not in (None, "") else None,
        str(body.get("description") or ""),
    )


def _check_keys(where: str, body: Mapping, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ExperimentConfigError(f"{where}: unknown keys {unknown}; allowed: {list(allowed)}")


def parse_plans(raw: Any, what: str = "the plan file") -> dict[str, ExperimentPlan]:
    """Plans of uploaded experiments, by id, from a mapping or YAML text::

        my_test:
          control: control
          allocation: {control: 0.7, treatment: 0.3}   # planned split (default: equal)
          baseline_rate: 0.05                          # optional, fixed before the test
          description: New onboarding flow
    """
    plans = {}
    for experiment_id, body in _load_mapping(raw, what).items():
        experiment_id = identifier(f"{what}: experiment id", experiment_id)
        where = f"{what}: {experiment_id}"
        if not isinstance(body, Mapping):
            raise ExperimentConfigError(f"{where} must be a mapping with keys among {list(PLAN_KEYS)}")
        _check_keys(where, body, PLAN_KEYS)
        plans[experiment_id] = _plan(experiment_id, body, where, None)
    return plans


def parse_specs(raw: Any) -> tuple[ExperimentSpec, ...]:
    """Typed experiment definitions from the ``ab_experiments`` setting (a mapping or YAML text).

    ``allocation`` is the planned split and ``delivered`` the split the simulated assignment
    gives (default: the planned one); set them apart to simulate a broken assignment.
    """
    specs = []
    for experiment_id, body in _load_mapping(raw, "ab_experiments").items():
        experiment_id = identifier("ab_experiments: experiment id", experiment_id)
        where = f"ab_experiments.{experiment_id}"
        if not isinstance(body, Mapping) or not isinstance(body.get("variants"), Mapping):
            raise ExperimentConfigError(f"{where} needs a 'variants' mapping of name: {{rate, order_value}}")
        _check_keys(where, body, SPEC_KEYS)
        names = [identifier(f"{where} variant", n) for n in body["variants"]]
        if len(names) < 2:
            raise ExperimentConfigError(f"{where} needs at least two variants, got {names}")
        plan = _plan(experiment_id, {"control": names[0], **body}, where, names)
        variants = []
        for name, v in zip(names, body["variants"].values()):
            if not isinstance(v, Mapping):
                raise ExperimentConfigError(f"{where}.variants.{name} needs rate and order_value")
            variants.append(Variant(name, _number(f"{where}.variants.{name}.rate", v.get("rate"), 0.0, 1.0),
                                    _number(f"{where}.variants.{name}.order_value", v.get("order_value", 0), 0.0)))
        delivered = (_shares(f"{where}.delivered", body["delivered"], names) if body.get("delivered") is not None
                     else plan.shares(names))
        import pandas as pd

        try:
            start = pd.Timestamp(str(body.get("start", "2026-01-05")))
        except ValueError:
            raise ExperimentConfigError(f"{where}.start must be a date, got {body.get('start')!r}") from None
        specs.append(ExperimentSpec(
            plan, tuple(variants), delivered, start,
            int(_number(f"{where}.days", body.get("days", 14), 1, 365)),
            _number(f"{where}.users_per_day", body.get("users_per_day", 1000), 1.0),
            _number(f"{where}.order_sigma", body.get("order_sigma", 0.8), 0.0, 5.0),
        ))
    return tuple(specs)
