"""Row checks on a file of experiment users, before anything is loaded.

One row per user: ``experiment_id, user_id, variant, assigned_at, converted, revenue``. The
checks are the time series' ones (missing, unparseable, out of range, unknown category,
duplicates); bad rows go to ``quarantine`` with every reason, so nothing read is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.experiment_specs import MAX_IDENTIFIER
from helpers.data.quality import (
    DataQualityError, Finding, finding_from_mask, is_missing, parse_flag, parse_numbers, parse_timestamps, quarantine_table,
    row_reasons,
)


COLUMNS = ("experiment_id", "user_id", "variant", "assigned_at", "converted", "revenue")


@dataclass
class ExperimentValidation:
    source: str
    rows_read: int
    clean: pd.DataFrame
    quarantine: pd.DataFrame  # row_number, experiment_id, reasons, record
    findings: list[Finding] = field(default_factory=list)


def validate_experiments(frame: pd.DataFrame, source: str = "<data>") -> ExperimentValidation:
    """Row checks on an experiment table; raise :class:`DataQualityError` when a column is missing.

    Row problems (the row is quarantined with every reason): ``missing_value``,
    ``unparseable`` (time, revenue), ``unknown_category`` (converted not 0/1; an id with
    characters outside letters, digits, '_' and '-'), ``out_of_range`` (negative revenue, or
    revenue without a conversion), ``duplicate_user`` (a user seen twice in an experiment:
    an exact copy keeps the first row; different rows, e.g. two variants, quarantine them all).
    """
    found = [str(c) for c in frame.columns]
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataQualityError(f"{source}: missing required columns {missing}; required: {list(COLUMNS)}; "
                               f"columns found: {found}")
    frame = frame.reset_index(drop=True)
    text = {c: frame[c].astype("string").str.strip() for c in ("experiment_id", "user_id", "variant")}
    parsed = pd.DataFrame({
        **text,
        "assigned_at": parse_timestamps(frame["assigned_at"]),
        "converted": parse_flag(frame["converted"]),
        "revenue": parse_numbers(frame["revenue"]),
    })
    findings: list[Finding] = []

    def add(kind: str, column: str, mask: Any, message: str) -> None:
        hit = finding_from_mask(kind, column, np.asarray(mask, dtype=bool), frame[column], message)
        if hit:
            findings.append(hit)

    absent = {c: is_missing(frame[c]) for c in COLUMNS}
    for column in COLUMNS:
        add("missing_value", column, absent[column], f"{column!r} is empty or NA")
    add("unparseable", "assigned_at", ~absent["assigned_at"] & parsed["assigned_at"].isna().to_numpy(),
        "'assigned_at' is not an ISO 8601 timestamp")
    add("unparseable", "revenue", ~absent["revenue"] & parsed["revenue"].isna().to_numpy(),
        "'revenue' is not a number")
    add("unknown_category", "converted", ~absent["converted"] & parsed["converted"].isna().to_numpy(),
        "'converted' must be 0 or 1")
    for column in ("experiment_id", "variant"):
        ok = text[column].fillna("").map(lambda s: 0 < len(s) <= MAX_IDENTIFIER and all(
            ch.isalnum() or ch in "_-" for ch in s))
        add("unknown_category", column, ~absent[column] & ~ok.to_numpy(dtype=bool),
            f"{column!r} must be 1-{MAX_IDENTIFIER} letters, digits, '_' or '-'")
    revenue, converted = parsed["revenue"], parsed["converted"]
    add("out_of_range", "revenue", (revenue < 0).fillna(False), "'revenue' is negative")
    add("out_of_range", "revenue", ((revenue > 0) & (converted == 0)).fillna(False),
        "'revenue' is positive for a user who did not convert")

    reasons = row_reasons(findings)
    eligible = np.ones(len(frame), dtype=bool)
    eligible[list(reasons)] = False
    keyed = parsed[eligible]
    key = ["experiment_id", "user_id"]
    repeated = keyed[keyed.duplicated(key, keep=False)]
    if not repeated.empty:
        conflicting = repeated.groupby(key).filter(lambda g: len(g.drop_duplicates()) > 1).index
        copies = repeated[~repeated.index.isin(conflicting)]
        dupes = np.zeros(len(frame), dtype=bool)
        dupes[list(conflicting)] = True
        dupes[copies[copies.duplicated(key)].index] = True
        hit = finding_from_mask("duplicate_user", "user_id", dupes, frame["user_id"],
                       "a user appears more than once in an experiment (conflicting rows are all quarantined)")
        if hit:
            findings.append(hit)
            row_reasons([hit], reasons)

    bad = np.zeros(len(frame), dtype=bool)
    bad[list(reasons)] = True
    clean = parsed[~bad].assign(converted=lambda d: d["converted"].astype(int)).reset_index(drop=True)
    quarantine = quarantine_table(frame, reasons)
    quarantine.insert(1, "experiment_id", [str(frame.at[r, "experiment_id"]) for r in sorted(reasons)])
    if len(clean) + len(quarantine) != len(frame):  # the accounting invariant
        raise AssertionError(f"{source}: {len(frame)} rows read != {len(clean)} clean + {len(quarantine)} quarantined")
    return ExperimentValidation(source, len(frame), clean, quarantine, findings)
