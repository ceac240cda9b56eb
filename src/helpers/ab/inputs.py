"""What every A/B analysis takes: its settings (:class:`ABConfig`) and the per-variant summary
statistics, checked by :func:`check_analysable`; :class:`NotAnalysable` says in plain language
why the data cannot answer a question.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ABConfig:
    """The A/B settings (``ab_*`` in env.yaml; checked by :mod:`helpers.core.settings`)."""

    rope: float = 0.002
    mde: float = 0.10
    alpha: float = 0.05
    power: float = 0.8
    draws: int = 100_000
    seed: int = 0
    pymc_draws: int = 1000
    pymc_chains: int = 4
    burn_in_days: int = 2
    min_payers: int = 20
    pymc: bool = True  # fit the PyMC models (slow); false: the report says they were left out
    calibration_sims: int = 2000  # simulated experiments per check of helpers.ab.calibration

    @classmethod
    def from_settings(cls, settings) -> ABConfig:
        return cls(settings.ab_rope, settings.ab_mde, settings.ab_alpha, settings.ab_power, settings.ab_draws,
                   settings.ab_seed, settings.ab_pymc_draws, settings.ab_pymc_chains, settings.ab_burn_in_days,
                   settings.ab_min_payers, settings.ab_pymc, settings.ab_calibration_sims)


class NotAnalysable(Exception):
    """The data cannot answer the question; the message says why in plain language.

    Deliberately not a ``ValueError``: a report catches only this, so a bug (which raises
    ``ValueError``, ``KeyError``, ...) fails the notebook instead of becoming a sentence.
    """


def check_analysable(summary: pd.DataFrame) -> pd.DataFrame:
    """The variants that can be analysed (control first), or :class:`NotAnalysable`.

    A variant without users is dropped with a note (``summary.attrs['notes']``); without
    users in the control, or with fewer than two variants left, nothing can be compared.
    """
    if summary.empty:
        raise NotAnalysable("the experiment has no users at all, so there is nothing to analyse")
    control = summary["variant"].iloc[0]
    empty = summary.loc[summary["users"] <= 0, "variant"].tolist()
    if control in empty:
        raise NotAnalysable(f"the control variant {control!r} has no users, so no variant can be compared with it")
    usable = summary[summary["users"] > 0].reset_index(drop=True)
    if len(usable) < 2:
        raise NotAnalysable(f"only {control!r} has users; an A/B comparison needs at least two variants with users")
    usable.attrs["notes"] = [f"{v!r} has no users and is left out of every comparison" for v in empty]
    return usable
