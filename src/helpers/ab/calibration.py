"""Calibration of the A/B methods by simulation, on the closed-form path.

Each function simulates many experiments with a known truth and reports how often the
method erred, beside the nominal rate and a tolerance of three binomial standard errors
(plus any stated slack). The tests assert these; the report prints them.

The table depends on the simulations, the seed and the methods' settings, not on an
experiment: the pipeline's ``calibration`` task computes it once (:func:`write_calibration`,
product ``ab/calibration.json`` in the products folder) and every experiment's report reads it
(:func:`show_calibration`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.ab.bayesian import decide, hdi_rows
from helpers.ab.inputs import ABConfig, NotAnalysable
from helpers.ab.sequential import first_stop, sequential_path
from helpers.core.files import write_atomic
from helpers.core.provenance import utc_now

#: Where the pipeline writes the table, relative to the products folder (pipeline.yaml's ``calibration`` task).
PRODUCT = Path("ab") / "calibration.json"
#: The table's columns, in the order the report shows them.
COLUMNS = ["check", "nominal", "observed", "simulations", "tolerance", "rule", "passes"]
#: The setting (env.yaml) behind each of :func:`calibration_table`'s arguments.
SETTING_OF = {"sims": "ab_calibration_sims", "seed": "ab_seed", "rope": "ab_rope", "mde": "ab_mde", "alpha": "ab_alpha",
              "power": "ab_power"}
#: The command that makes the product with the current settings.
COMMAND = "`make run` (python -m helpers.app.pipeline build)"


def _row(check: str, nominal: float, observed: float, n: int, slack: float = 0.0, bound: str = "at most") -> dict:
    tolerance = 3 * np.sqrt(nominal * (1 - nominal) / n) + slack
    ok = observed <= nominal + tolerance if bound == "at most" else abs(observed - nominal) <= tolerance
    return {"check": check, "nominal": nominal, "observed": observed, "simulations": n,
            "tolerance": tolerance, "rule": f"{bound} nominal + tolerance" if bound == "at most"
            else "within nominal ± tolerance", "passes": bool(ok)}


def _lift_hdis(rng, users: int, rate_a: np.ndarray, rate_b: np.ndarray, draws: int) -> np.ndarray:
    conv_a, conv_b = rng.binomial(users, rate_a), rng.binomial(users, rate_b)
    sims = len(conv_a)
    draws_a = rng.beta(1 + conv_a[:, None], 1 + users - conv_a[:, None], (sims, draws))
    draws_b = rng.beta(1 + conv_b[:, None], 1 + users - conv_b[:, None], (sims, draws))
    return hdi_rows(draws_b - draws_a)


def aa_false_positives(sims: int = 2000, users: int = 5000, rate: float = 0.1, rope: float = 0.002,
                       draws: int = 2000, seed: int = 0) -> dict:
    """A/A experiments: how often the HDI + ROPE rule declares a variant better or worse (nominal 5%)."""
    rng = np.random.default_rng(seed)
    bounds = _lift_hdis(rng, users, np.full(sims, rate), np.full(sims, rate), draws)
    decisions = [decide(low, high, rope) for low, high in bounds]
    rate_hit = float(np.mean([d in ("better", "worse") for d in decisions]))
    # Without a ROPE the rule is "the HDI excludes zero", whose rate should be the nominal 5%;
    # a ROPE can only make it rarer.
    return _row(f"A/A false positives of the decision rule (ROPE {rope})", 0.05, rate_hit, sims,
                bound="near" if rope == 0 else "at most")


def interval_coverage(sims: int = 2000, users: int = 5000, draws: int = 2000, seed: int = 1) -> dict:
    """How often the 95% HDI of the lift covers the true lift, over random true rates."""
    rng = np.random.default_rng(seed)
    rate_a = rng.uniform(0.02, 0.3, sims)
    rate_b = np.clip(rate_a * rng.uniform(0.8, 1.25, sims), 0.001, 0.999)
    bounds = _lift_hdis(rng, users, rate_a, rate_b, draws)
    truth = rate_b - rate_a
    covered = float(np.mean((bounds[:, 0] <= truth) & (truth <= bounds[:, 1])))
    return _row("95% HDI covers the true lift", 0.95, covered, sims, bound="near")


def sprt_error_rates(sims: int = 1000, days: int = 60, users_per_day: int = 500, rate: float = 0.1,
                     mde: float = 0.1, alpha: float = 0.05, power: float = 0.8, seed: int = 2) -> list[dict]:
    """Type I error (no true lift) and type II error (true lift = MDE) of the daily SPRT, and the
    mSPRT's type I error over the same horizon. A path that never stops counts as not rejecting."""
    rng = np.random.default_rng(seed)
    delta = mde * rate
    beta = 1 - power
    results = {}
    for truth, lift in (("H0", 0.0), ("H1", delta)):
        sprt_rejects, msprt_rejects = 0, 0
        for _ in range(sims):
            n = np.full(days, users_per_day).cumsum()
            x_c = rng.binomial(users_per_day, rate, days).cumsum()
            x_v = rng.binomial(users_per_day, rate + lift, days).cumsum()
            stop = first_stop(sequential_path(n, x_c, n, x_v, delta, alpha, beta), alpha)
            sprt_rejects += stop["sprt_conclusion"] == "lift"
            msprt_rejects += stop["msprt_look"] is not None
        results[truth] = (sprt_rejects / sims, msprt_rejects / sims)
    return [
        _row("SPRT type I error (no lift)", alpha, results["H0"][0], sims),
        _row("SPRT type II error (lift = MDE)", beta, 1 - results["H1"][0], sims),
        _row("mSPRT type I error (no lift, checked daily)", alpha, results["H0"][1], sims),
    ]


def calibration_table(sims: int = 1000, seed: int = 0, rope: float = 0.002, mde: float = 0.1, alpha: float = 0.05,
                      power: float = 0.8) -> pd.DataFrame:
    """All checks at ``sims`` simulations each (the SPRT's at half as many, at least 100), with the
    methods' settings: the decision rule's ``rope``, the sequential tests' ``mde``, ``alpha`` and ``power``."""
    return pd.DataFrame([aa_false_positives(sims, rope=rope, seed=seed),
                         aa_false_positives(sims, rope=0.0, seed=seed + 3),
                         interval_coverage(sims, seed=seed + 1),
                         *sprt_error_rates(max(sims // 2, 100), mde=mde, alpha=alpha, power=power, seed=seed + 2)])


def calibration_parameters(config: ABConfig) -> dict[str, Any]:
    """What the table depends on (:func:`calibration_table`'s arguments), from the A/B settings."""
    return {"sims": config.calibration_sims, "seed": config.seed, "rope": config.rope, "mde": config.mde,
            "alpha": config.alpha, "power": config.power}


def write_calibration(path: str | Path, config: ABConfig) -> dict[str, Any]:
    """Compute the table with ``config``'s settings and write it with them to ``path`` (JSON, whole
    or not at all); returns the record: ``parameters``, ``table`` (rows), ``seconds``, ``created_utc``."""
    parameters = calibration_parameters(config)
    start = time.perf_counter()
    table = calibration_table(**parameters)
    record = {"parameters": parameters, "table": table[COLUMNS].to_dict(orient="records"),
              "seconds": round(time.perf_counter() - start, 3),
              "created_utc": utc_now().isoformat(timespec="seconds")}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(record, indent=1))
    return record


class CalibrationRecordError(ValueError):
    """A calibration product that does not read as one; the message says what is wrong."""


def read_record(path: str | Path) -> dict[str, Any]:
    """The record :func:`write_calibration` wrote; :class:`CalibrationRecordError` when it is not one
    (``FileNotFoundError`` when there is no file)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationRecordError(f"not JSON ({exc})") from exc
    if not isinstance(record, dict) or not isinstance(record.get("parameters"), dict):
        raise CalibrationRecordError("no parameters recorded")
    missing = sorted(set(calibration_parameters(ABConfig())) - set(record["parameters"]))
    if missing:
        raise CalibrationRecordError(f"parameters {missing} not recorded")
    rows = record.get("table")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) and set(COLUMNS) <= set(r) for r in rows):
        raise CalibrationRecordError(f"the table is not a list of rows with the columns {', '.join(COLUMNS)}")
    return record


class CalibrationUnavailable(NotAnalysable):
    """The calibration table cannot be shown; the message says why and which command makes it."""


def read_calibration(path: str | Path, config: ABConfig) -> pd.DataFrame:
    """The table in ``path``, made with ``config``'s settings, or :class:`CalibrationUnavailable`."""
    try:
        record = read_record(path)
    except FileNotFoundError:
        raise CalibrationUnavailable(f"The calibration table is not there yet ({path}); {COMMAND} makes it.") from None
    except CalibrationRecordError as exc:
        raise CalibrationUnavailable(f"{path} is not a calibration table ({exc}); {COMMAND} makes it again.") from None
    wanted = calibration_parameters(config)
    differ = {key: (record["parameters"][key], value) for key, value in wanted.items()
              if record["parameters"][key] != value}
    if differ:
        made = ", ".join(f"{SETTING_OF[key]} {was}" for key, (was, _) in differ.items())
        now = ", ".join(f"{SETTING_OF[key]} {value}" for key, (_, value) in differ.items())
        raise CalibrationUnavailable(f"The calibration table in {path} was made with {made}, but this report's "
                                     f"settings say {now}; {COMMAND} makes it again with them.")
    return pd.DataFrame(record["table"], columns=COLUMNS)


def show_calibration(path: str | Path, config: ABConfig) -> Any:
    """The table for a notebook cell, or the sentence saying why it is missing and which command makes it."""
    from IPython.display import Markdown

    try:
        return read_calibration(path, config)
    except CalibrationUnavailable as exc:
        return Markdown(f"*{exc}*")
