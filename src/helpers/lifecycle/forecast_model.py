"""The registered model: an MLflow pyfunc around the forecast artifact (MLflow "models from code").

:mod:`helpers.lifecycle.registry` logs this file with each version; MLflow copies it into the
model and runs it when the model is loaded (``mlflow.pyfunc.load_model("models:/demand-forecast@champion")``),
so it needs only ``mlflow`` and ``pandas``, not this project. The artifact JSON travels with the
model as its pyfunc artifact ``forecast_artifact``.

``predict`` takes one row per request, ``start_date`` and ``end_date`` (ISO days, inclusive)
and optionally ``model`` (default: the selected one), and returns one row per forecast day:
``request`` (the input row), ``ds``, ``model``, ``mean``, ``lo-80``, ``hi-80``, ``lo-95``,
``hi-95`` (the served intervals), slices of the paths the artifact holds.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

COLUMNS = ("mean", "lo-80", "hi-80", "lo-95", "hi-95")


class ForecastModel(PythonModel):
    """Forecasts sliced from the artifact's paths; nothing is fitted at prediction time."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["forecast_artifact"], encoding="utf-8") as handle:
            self.load(json.load(handle))

    def load(self, payload: dict[str, Any]) -> None:
        """Keep each model's forecast path as a frame indexed by day."""
        self.selected = payload["selected_model"]
        self.paths = {name: pd.DataFrame({c: entry["forecast"][c] for c in COLUMNS},
                                         index=pd.to_datetime(entry["forecast"]["ds"]).normalize())
                      for name, entry in payload["models"].items()}

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        parts = []
        for request, row in enumerate(model_input.to_dict("records")):
            name = row.get("model") or self.selected
            if name not in self.paths:
                raise ValueError(f"unknown model {name!r}; this version forecasts {', '.join(sorted(self.paths))}")
            path = self.paths[name]
            start, end = pd.Timestamp(row["start_date"]).normalize(), pd.Timestamp(row["end_date"]).normalize()
            first, last = path.index[0], path.index[-1]
            if not first <= start <= end <= last:
                raise ValueError(f"start_date {start.date()} to end_date {end.date()} is outside the forecastable "
                                 f"days {first.date()} to {last.date()} (start must not be after end)")
            part = path.loc[start:end].rename_axis("ds").reset_index()
            parts.append(part.assign(request=request, model=name, ds=part["ds"].dt.strftime("%Y-%m-%d")))
        columns = ["request", "ds", "model", *COLUMNS]
        return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


mlflow.models.set_model(ForecastModel())
