"""The artifact a cycle refits: the registry's champion, downloaded (:func:`champion_artifact`).

Light on purpose: the cycle imports it for every run, skipped ones included, and a registry that
was never made is answered without importing MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers.core.files import write_atomic
from helpers.core.settings import Settings
from helpers.forecast.artifact import ArtifactError, load_artifact


class StoreUnavailable(RuntimeError):
    """The MLflow store could not be read (a server down, a database that is not one); the message says which."""


def reason(exc: BaseException) -> str:
    """``ExceptionType: its first line``, for a sentence."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


#: What the last lookup found, kept in the download folder (:func:`champion_artifact`).
RECORD = "champion.json"


def _recorded(folder: Path, uri: str, stamp: tuple | None) -> Path | None:
    """The artifact the last lookup in ``folder`` found, when the store has not been written since."""
    if stamp is None:
        return None
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("registry_uri") != uri or record.get("stamp") != json.loads(
            json.dumps(stamp)):
        return None
    if record.get("file") is None:
        return None
    path = folder / str(record["file"])
    try:
        load_artifact(path)  # a file spoilt since is downloaded again
    except ArtifactError:
        return None
    return path


def champion_artifact(settings: Settings, folder: Path) -> Path | None:
    """The registry champion's forecast artifact, downloaded into ``folder``; None when the registry
    has no champion or was never made.

    A local SQLite store that nothing has written since the last lookup in ``folder`` is not asked
    again (nor MLflow imported): the champion cannot have moved, and the file downloaded then is
    returned. ``folder`` holds that lookup's record (``champion.json``).

    Raises :class:`helpers.lifecycle.registry.RegistryError` when the champion's artifact is
    unusable, :class:`StoreUnavailable` when the store cannot be read."""
    from helpers.lifecycle.registry import CHAMPION, STORE_LIBRARIES, Registry, RegistryError
    from helpers.lifecycle.tracking import store_stamp

    registry = Registry.from_settings(settings)
    if not registry.store.exists():
        return None
    uri = registry.store.registry_uri
    stamp = store_stamp(uri)
    known = _recorded(folder, uri, stamp)
    if known is not None:
        return known
    try:
        champion = registry.get(CHAMPION)
        path = None if champion is None else registry.artifact(champion.version, folder)
    except RegistryError:
        raise
    except Exception as exc:
        if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in STORE_LIBRARIES:
            raise StoreUnavailable(f"the MLflow store {registry.store.registry_uri} could not be read for the "
                                   f"champion ({reason(exc)}); check MLFLOW_TRACKING_URI / mlflow_dir") from exc
        raise
    if path is not None and stamp is not None:
        write_atomic(folder / RECORD, json.dumps({"registry_uri": uri, "stamp": stamp, "version": champion.version,
                                                  "file": path.name}))
    return path
