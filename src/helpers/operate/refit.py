"""Refit the production model on all the data there is now, and forecast from it.

The production model is the one the served artifact names (``selected_model``, with its
ensemble members, its comparison settings and its interval calibration). A cycle fits the
same models with the same settings on every day now in the warehouse and forecasts
``max_horizon`` days past the last one: new data, same model. The refit artifact is written
like the pipeline's (:func:`helpers.forecast.artifact.write_artifact`); the cycle logs its
forecasts (:func:`helpers.operate.forecast_log.artifact_forecasts`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any


from helpers.core.provenance import git_commit, package_versions, utc_now
from helpers.core.settings import Settings
from helpers.data.series import load_series
from helpers.forecast import artifact, calibration, comparison
from helpers.warehouse import Warehouse


def production_config(payload: dict[str, Any]) -> comparison.ComparisonConfig:
    """The comparison settings an artifact was made with."""
    config = dict(payload["parameters"]["comparison"])
    return comparison.ComparisonConfig(**{**config, "season_lengths": tuple(config["season_lengths"]),
                                          "models": tuple(config["models"])})


def refit(settings: Settings, warehouse: Warehouse, artifact_path: str | Path,
          now: datetime | None = None) -> dict[str, Any]:
    """A new artifact payload: the artifact's models fitted on all days in the warehouse."""
    payload = artifact.load_artifact(artifact_path)
    config = production_config(payload)
    view = load_series(warehouse, payload["series_id"], "daily", max_fill_steps=settings.max_fill_steps)
    frame = comparison.prepare_frame(view)
    models = payload["models"]
    members = (models.get("ensemble") or {}).get("members") or [payload["selected_model"]]
    calibrations = calibration.from_record({name: model["calibration"] for name, model in models.items()})
    created = (now or utc_now()).isoformat(timespec="seconds")
    return {
        **payload,
        "created_utc": created,
        "training_start": frame["ds"].iloc[0].isoformat(),
        "training_end": frame["ds"].iloc[-1].isoformat(),
        "models": comparison.artifact_models(frame, config, payload["selected_model"], members,
                                             {name: model["cv"] for name, model in models.items()}, calibrations),
        "refit_of": payload.get("refit_of") or payload["created_utc"],
        "packages": package_versions(),
        "git_commit": git_commit(),
    }
