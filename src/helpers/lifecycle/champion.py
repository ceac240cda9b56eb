"""The artifact a cycle refits: the registry's champion, downloaded (:func:`champion_artifact`).

Light on purpose: the cycle imports it for every run, skipped ones included, and a registry that
was never made is answered without importing MLflow.
"""

from __future__ import annotations

from pathlib import Path

from helpers.core.settings import Settings


class StoreUnavailable(RuntimeError):
    """The MLflow store could not be read (a server down, a database that is not one); the message says which."""


def reason(exc: BaseException) -> str:
    """``ExceptionType: its first line``, for a sentence."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def champion_artifact(settings: Settings, folder: Path) -> Path | None:
    """The registry champion's forecast artifact, downloaded into ``folder``; None when the registry
    has no champion or was never made.

    Raises :class:`helpers.lifecycle.registry.RegistryError` when the champion's artifact is
    unusable, :class:`StoreUnavailable` when the store cannot be read."""
    from helpers.lifecycle.registry import CHAMPION, STORE_LIBRARIES, Registry, RegistryError

    registry = Registry.from_settings(settings)
    if not registry.store.exists():
        return None
    try:
        champion = registry.get(CHAMPION)
        return None if champion is None else registry.artifact(champion.version, folder)
    except RegistryError:
        raise
    except Exception as exc:
        if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in STORE_LIBRARIES:
            raise StoreUnavailable(f"the MLflow store {registry.store.registry_uri} could not be read for the "
                                   f"champion ({reason(exc)}); check MLFLOW_TRACKING_URI / mlflow_dir") from exc
        raise
