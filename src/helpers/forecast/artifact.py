"""The production forecast artifact: forecast paths with intervals plus metadata, as JSON.

The artifact stores what the endpoint serves (each model's forecast path up to a maximum
horizon, with 80% and 95% intervals calibrated on the backtest folds or the model's own where
those came closer to their level, and the calibration that made them) and what the report
shows (each model's cross-validated metrics, with the coverage of the served, the calibrated
and the model's own intervals), so the two cannot disagree.
It is written atomically (:func:`helpers.core.files.write_atomic`): to a temporary file in the
same folder, flushed, then renamed over the old one, so a reader sees the old artifact or the
new one, never half of one; its mode follows the umask (0644), so a service running as
another user can read it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from helpers.core.files import unreadable, write_atomic

#: 2: intervals calibrated (``interval_calibration``; per model ``calibration`` and raw coverage in ``cv``).
#: 3: the served interval may be the model's own (method ``model``); ``cv`` adds ``calibrated_coverage_*``.
SCHEMA_VERSION = 3
REQUIRED_KEYS = ("schema_version", "created_utc", "series_id", "frequency", "training_start", "training_end",
                 "data_sha256", "selected_model", "models", "interval_calibration", "parameters", "packages",
                 "git_commit")
PATH_KEYS = ("ds", "mean", "lo-80", "hi-80", "lo-95", "hi-95")
LEVELS = ("80", "95")
CV_KEYS = ("rmse", "mae", *(f"{kind}_{lv}" for lv in LEVELS for kind in ("coverage", "calibrated_coverage", "raw_coverage")))
BUILD_COMMAND = "make run"


class ArtifactError(RuntimeError):
    """The artifact is missing, unreadable or invalid; the message says what and how to rebuild it."""


def write_artifact(path: str | Path, payload: dict[str, Any]) -> Path:
    """Validate ``payload`` and write it atomically to ``path``, readable as the umask allows (0644)."""
    validate_artifact(payload, source="the payload to write")
    return write_atomic(path, json.dumps(payload, indent=1, allow_nan=False))


def _fail(source: str, problem: str) -> ArtifactError:
    return ArtifactError(f"{source}: {problem}. Rebuild the artifact with `{BUILD_COMMAND}`.")


def _is_calibration(entry: Any) -> bool:
    if not isinstance(entry, dict) or entry.get("method") not in ("scaled", "absolute", "model"):
        return False
    factor = entry.get("factor")
    return isinstance(factor, (int, float)) and math.isfinite(factor) and factor >= 0


def validate_artifact(payload: Any, source: str = "artifact") -> dict[str, Any]:
    """Check the structure and the numbers; raise :class:`ArtifactError` on the first problem."""
    if not isinstance(payload, dict):
        raise _fail(source, "not a JSON object")
    # The version first: an artifact of another version is refused as such, whatever its keys.
    if "schema_version" in payload and payload["schema_version"] != SCHEMA_VERSION:
        raise _fail(source, f"schema version {payload['schema_version']!r}, this code reads version {SCHEMA_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise _fail(source, f"missing keys {missing}")
    models = payload["models"]
    if not isinstance(models, dict) or not models:
        raise _fail(source, "no models")
    if payload["selected_model"] not in models:
        raise _fail(source, f"selected model {payload['selected_model']!r} is not among {sorted(models)}")
    for name, model in models.items():
        path = model.get("forecast") if isinstance(model, dict) else None
        if not isinstance(path, dict) or any(k not in path for k in PATH_KEYS):
            raise _fail(source, f"model {name!r} lacks a forecast path with {list(PATH_KEYS)}")
        lengths = {len(path[k]) for k in PATH_KEYS}
        if len(lengths) != 1 or 0 in lengths:
            raise _fail(source, f"model {name!r} has forecast columns of different or zero length")
        if list(path["ds"]) != sorted(path["ds"]):
            raise _fail(source, f"model {name!r} forecast dates are not increasing")
        for i in range(len(path["ds"])):
            values = [path[k][i] for k in ("lo-95", "lo-80", "mean", "hi-80", "hi-95")]
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise _fail(source, f"model {name!r} has a non-finite forecast at {path['ds'][i]}")
            if any(a > b + 1e-9 for a, b in zip(values, values[1:])):
                raise _fail(source, f"model {name!r} intervals are not nested at {path['ds'][i]}")
        if not isinstance(model.get("cv"), dict) or any(k not in model["cv"] for k in CV_KEYS):
            raise _fail(source, f"model {name!r} lacks cross-validated metrics {list(CV_KEYS)}")
        calibration = model.get("calibration")
        if not isinstance(calibration, dict) or not all(_is_calibration(calibration.get(lv)) for lv in LEVELS):
            raise _fail(source, f"model {name!r} lacks an interval calibration (method 'scaled', 'absolute' or 'model' "
                                f"and a finite factor >= 0) for levels {list(LEVELS)}")
    return payload


def load_artifact(path: str | Path) -> dict[str, Any]:
    """Read and validate the artifact at ``path``."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"no forecast artifact at {path}. Build it with `{BUILD_COMMAND}`.")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(str(path), f"corrupt JSON ({exc})") from exc
    except OSError as exc:
        raise ArtifactError(f"{unreadable(path, exc)} (`{BUILD_COMMAND}` writes a new one).") from None
    return validate_artifact(payload, source=str(path))
