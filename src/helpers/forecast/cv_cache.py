"""A cache of cross-validation folds: each model's forecast at each cutoff, kept between runs.

A fold's forecast depends on the model (its class and settings, :meth:`Forecaster.spec`), the
data it reads (the training rows up to the cutoff and the ``h`` rows it forecasts, every
column), the fold settings (grain, horizon, number of folds, first training window, interval
levels), the model code (``helpers/forecast/models.py``) and the forecasting libraries'
versions. The key hashes all of them, so adding a model or changing one model's settings
re-runs only that model's folds, and any change to the data or the fold settings re-runs
every fold.

Entries are small JSON files under ``<directory>/<model>/<key>.json`` (the forecast columns
and the fit+predict seconds the fold first took). A file that cannot be read is a miss: the
fold is fitted again and the file rewritten, so a cache can always be deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core.files import write_atomic
from helpers.forecast.models import Forecaster

#: Bump when the entry layout changes.
SCHEMA = 1
#: Libraries whose version is part of every key.
LIBRARIES = ("statsforecast", "prophet", "pmdarima", "statsmodels", "numpy", "scipy")


@cache
def code_version() -> str:
    """Hash of the model code and the forecasting libraries' versions."""
    digest = hashlib.sha256(Path(__file__).with_name("models.py").read_bytes())
    for name in LIBRARIES:
        try:
            digest.update(f"{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=absent".encode())
    return digest.hexdigest()


def data_digest(rows: pd.DataFrame) -> str:
    """Hash of a frame's columns and values (its index ignored)."""
    digest = hashlib.sha256(",".join(map(str, rows.columns)).encode())
    digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    return digest.hexdigest()


class FoldCache:
    """Forecasts of (model, fold) pairs under ``directory``; ``scope`` holds the fold settings."""

    def __init__(self, directory: str | os.PathLike[str], scope: dict) -> None:
        self.directory = Path(directory)
        self.scope = scope
        self.hits = self.misses = self.unwritable = 0
        self.error = ""

    def key(self, model: Forecaster, cutoff: pd.Timestamp, data: str, level: Sequence[int]) -> str:
        described = {"schema": SCHEMA, "code": code_version(), "scope": self.scope, "model": model.spec(),
                     "cutoff": pd.Timestamp(cutoff).isoformat(), "data": data, "level": list(level)}
        return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()

    def path(self, model: Forecaster, key: str) -> Path:
        return self.directory / model.name / f"{key}.json"

    def get(self, model: Forecaster, key: str, h: int) -> tuple[pd.DataFrame, float] | None:
        """The stored forecast and its seconds, or ``None`` (absent, unreadable or the wrong length)."""
        try:
            entry = json.loads(self.path(model, key).read_text())
            frame = pd.DataFrame({c: np.asarray(v, dtype=float) for c, v in entry["columns"].items()})
            seconds = float(entry["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            self.misses += 1
            return None
        if len(frame) != h:
            self.misses += 1
            return None
        self.hits += 1
        return frame, seconds

    def put(self, model: Forecaster, key: str, predicted: pd.DataFrame, seconds: float) -> None:
        """Store a fold's forecast, whole or not at all. A write that fails (a full disk, a folder
        that is not writable) leaves the cache as it was; ``unwritable`` counts them and ``error``
        says why, for the report."""
        entry = {"model": model.name, "seconds": seconds,
                 "columns": {c: [None if np.isnan(x) else float(x) for x in predicted[c]] for c in predicted}}
        try:
            write_atomic(self.path(model, key), json.dumps(entry))
        except OSError as exc:
            self.unwritable += 1
            self.error = f"{exc.strerror or exc} ({exc.filename or self.directory})"
