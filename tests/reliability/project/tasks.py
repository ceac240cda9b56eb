"""The small pipeline's function task: a valid forecast artifact, as fit_final writes one."""

from __future__ import annotations

from typing import Any

from helpers.forecast.artifact import write_artifact
from tests.support import artifact_payload


def fit_final(product: Any, upstream: Any) -> None:
    write_artifact(str(product), artifact_payload(n=7, models=("naive", "ensemble")))
