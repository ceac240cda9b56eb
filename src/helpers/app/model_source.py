"""What the forecast service serves, and how it follows it to a new model without a restart.

Two sources:

- :class:`FileSource` (``--artifact FILE`` or ``HELPERS_ARTIFACT``): the file; a change is a
  new (device, inode, size, mtime, ctime), so replacing the file (the pipeline renames a new
  one over it) or ``chmod`` on it is seen by one ``stat``;
- :class:`RegistrySource` (the default): the registry's ``champion``
  (:mod:`helpers.lifecycle.registry`); a change is another version behind the alias, so a
  promotion and a rollback are both seen.

:class:`ModelFollower` checks the source every ``registry_poll_seconds`` and at once on
:meth:`~ModelFollower.wake` (the service calls it on SIGHUP). A check runs in a thread of its
own, off the event loop: it reads the source, downloads and loads the new artifact into a
whole new ``Forecasts`` (``helpers.app.service``), and only then hands it to the event loop,
which swaps the served object in one assignment. A request reads the served object once, so
it is answered entirely by the old model or entirely by the new one.

A new artifact that is corrupt or incompatible (another series or frequency) is refused: the
old one keeps serving, one line on stderr says which version and why, and ``GET /health``
shows the last refusal (``model_source.last_refusal``). The checks do not try a refused
version again; SIGHUP does (after a failed download, say). A source that
cannot be read (the registry down, the file gone) is a failed check, retried at the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

from helpers.forecast.artifact import BUILD_COMMAND, ArtifactError

#: The artifact file to serve instead of the registry's champion (``--artifact`` wins).
ARTIFACT_ENV = "HELPERS_ARTIFACT"
#: The artifact's own lineage, shown for a file (a registry version has its tags instead).
ARTIFACT_LINEAGE = ("created_utc", "training_start", "training_end", "data_sha256", "git_commit")


class SourceError(ArtifactError):
    """There is nothing to serve (no champion, no file); the message says which command makes one."""


@dataclass(frozen=True)
class Fetched:
    """An artifact ready to load: the local file, and what the service reports about it."""

    path: Path
    origin: str  # what is served, as a user names it: the file, or models:/<name>/<version>
    version: int | None = None  # the registry version; None for a file
    lineage: dict[str, str] | None = None  # the registry version's tags; None: the artifact's own
    scratch: Path | None = None  # a download folder, removed once loaded


class Loaded(Protocol):
    """What the follower needs of a loaded artifact (``helpers.app.service.Forecasts``)."""

    series_id: str
    frequency: str
    version: int | None
    origin: str
    last_updated: str


class FileSource:
    """The artifact file at ``path``."""

    mode = "file"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.follows = str(self.path)

    def current(self) -> Hashable | None:
        """The file's identity now; ``None`` when there is no file."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    def fetch(self, token: Hashable) -> Fetched:
        return Fetched(self.path, str(self.path))

    def challenger(self) -> dict[str, Any] | None:
        return None

    def label(self, token: Hashable) -> str:
        modified = datetime.fromtimestamp(token[3] / 1e9, timezone.utc).isoformat(timespec="seconds")  # type: ignore[index]
        return f"{self.path} as modified at {modified}"

    def nothing(self) -> str:
        return f"no forecast artifact at {self.path}. Build it with `{BUILD_COMMAND}`."

    def close(self) -> None:
        pass


class RegistrySource:
    """The ``champion`` of a model registry (:class:`helpers.lifecycle.registry.Registry`).

    A check asks for the registered model's aliases, one call to the store (about 10 ms of
    CPU on a local SQLite store; two ``Registry.get`` calls took 50 ms), held by the GIL, so
    the event loop waits that long. On a local SQLite store the call is made only when the
    database file (or its write-ahead log) has changed since the last check: every alias move
    is a commit, which writes it, and a check of an unchanged store is two ``stat`` calls. A
    version's lineage is read when an alias moves to it. Versions are downloaded into a private temporary folder,
    removed once loaded.
    """

    mode = "registry"

    def __init__(self, registry: Any, name: str) -> None:
        self.registry = registry
        self.name = name
        self.follows = f"models:/{name}@champion"
        self._downloads: Path | None = None
        self._fetches = 0
        self._aliases: dict[str, int] = {}  # as the last check found them
        self._stamp: Hashable | None = None  # the local database file as the last query saw it
        self._challenger: dict[str, Any] | None = None

    @classmethod
    def from_settings(cls, raw: dict[str, Any]) -> "RegistrySource":
        """The registry of the raw settings ``raw`` (``mlflow_dir``, ``registry_model``,
        ``mlflow_experiment``; ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI`` win)."""
        from helpers.core.settings import mlflow_settings
        from helpers.lifecycle.registry import Registry

        mlflow_dir, model, experiment = mlflow_settings(raw)
        settings = SimpleNamespace(mlflow_dir=mlflow_dir, registry_model=model, mlflow_experiment=experiment)
        return cls(Registry.from_settings(settings), model)

    def current(self) -> Hashable | None:
        """The champion's version number; ``None`` when no version is champion."""
        self._aliases = self._read_aliases()
        return self._aliases.get("champion")

    def _file_stamp(self) -> Hashable | None:
        """A local SQLite registry's :func:`~helpers.lifecycle.tracking.store_stamp`; None for a server
        (always asked)."""
        from helpers.lifecycle.tracking import store_stamp

        return store_stamp(self.registry.store.registry_uri)

    def _read_aliases(self) -> dict[str, int]:
        if not self.registry.store.exists():  # a local store never made: nothing registered (and none made here)
            return {}
        stamp = self._file_stamp()
        if stamp is not None and stamp == self._stamp:
            return self._aliases  # nothing was committed since the last query
        from mlflow.exceptions import MlflowException

        try:
            model = self.registry.client.get_registered_model(self.name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                self._stamp = stamp
                return {}
            raise
        self._stamp = stamp
        return {alias: int(number) for alias, number in model.aliases.items()}

    def fetch(self, token: Hashable) -> Fetched:
        version = int(token)  # type: ignore[call-overload]
        origin = f"models:/{self.name}/{version}"
        found = self.registry.get(version)
        if found is None:  # deleted between the check and the download
            raise SourceError(f"{origin} is no longer in the registry")
        if self._downloads is None:
            self._downloads = Path(tempfile.mkdtemp(prefix="helpers-serve-"))
        self._fetches += 1
        scratch = self._downloads / f"{self._fetches}-v{version}"
        try:
            path = self.registry.artifact(version, scratch)
        except (ArtifactError, ValueError) as exc:  # refused (RegistryError is a ValueError): name the
            shutil.rmtree(scratch, ignore_errors=True)  # version, not the temporary file it was downloaded to
            raise type(exc)(re.sub(re.escape(str(scratch)) + r"[^\s:)]*", origin, str(exc))) from None
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return Fetched(path, origin, version, dict(found.lineage), scratch)

    def challenger(self) -> dict[str, Any] | None:
        """The ``challenger`` the last :meth:`current` found, with its lineage and pooled CV
        metrics; ``None`` when there is none."""
        number = self._aliases.get("challenger")
        if number is None:
            self._challenger = None
        elif self._challenger is None or self._challenger["version"] != number:
            self._challenger = self._describe(number)
        return self._challenger

    def _describe(self, number: int) -> dict[str, Any] | None:
        found = self.registry.get(number)
        if found is None:  # deleted since
            return None
        cv = {}
        for key in ("mae", "rmse"):
            try:
                cv[key] = float(found.lineage[f"cv_{key}"])
            except (KeyError, ValueError):  # a version registered without them: shown as unknown
                cv[key] = None
        return {"version": found.version, "aliases": list(found.aliases), "run_id": found.run_id,
                "lineage": dict(found.lineage), "cv": cv}

    def label(self, token: Hashable) -> str:
        return f"version {token} of {self.name}"

    def nothing(self) -> str:
        return (f"no version of {self.name} is the champion in the model registry (mlflow_dir, or "
                f"MLFLOW_TRACKING_URI); `{BUILD_COMMAND}` registers the first as champion, `make promote VERSION=N` "
                "makes another one champion, or serve a file with --artifact FILE")

    def close(self) -> None:
        if self._downloads is not None:
            shutil.rmtree(self._downloads, ignore_errors=True)
            self._downloads = None


def source_for(artifact: str | Path | None = None) -> FileSource | RegistrySource:
    """The file ``artifact``, else ``$HELPERS_ARTIFACT``, else the registry's champion (the settings' registry)."""
    if artifact is None and os.environ.get(ARTIFACT_ENV):
        artifact = os.environ[ARTIFACT_ENV]
    if artifact is not None:
        return FileSource(artifact)
    from helpers.core.settings import raw_settings

    return RegistrySource.from_settings(raw_settings())


@dataclass(frozen=True)
class Refusal:
    """A new artifact the service would not serve."""

    label: str  # which: "version 7 of demand-forecast", or the file and its time
    version: int | None
    reason: str
    at_utc: str

    def as_dict(self) -> dict[str, Any]:
        return {"what": self.label, "version": self.version, "reason": self.reason, "at_utc": self.at_utc}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _in_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` in a daemon thread of its own: a check stuck on a registry server that does not
    answer (its client retries for minutes) holds up neither the event loop nor the process's exit,
    as a thread of an executor would (Python joins those at exit)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def deliver(outcome: Callable[[], None]) -> None:
        if not future.done():  # cancelled meanwhile: the service is stopping
            outcome()

    def work() -> None:
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task, which raises it
            outcome = partial(future.set_exception, exc)
        else:
            outcome = partial(future.set_result, result)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for it
            loop.call_soon_threadsafe(deliver, outcome)

    threading.Thread(target=work, name="model-source", daemon=True).start()
    return await future


def served_label(served: Loaded) -> str:
    return f"version {served.version}" if served.version is not None else f"{served.origin} of {served.last_updated}"


class ModelFollower:
    """Follows ``source``: loads what it points to with ``load`` (``Forecasts.load``), checks
    it again every ``poll_seconds`` and on :meth:`wake`, and hands every valid new artifact to
    the ``swap`` given to :meth:`run` (see the module docstring)."""

    def __init__(self, source: FileSource | RegistrySource, load: Callable[..., Loaded], poll_seconds: float) -> None:
        if not poll_seconds > 0:
            raise ValueError(f"poll_seconds must be positive, got {poll_seconds!r}")
        self.source = source
        self.load = load
        self.poll_seconds = poll_seconds
        self.served: Loaded | None = None
        self.served_since_utc: str | None = None
        self.challenger: dict[str, Any] | None = None
        self.last_check_utc: str | None = None
        self.last_error: str | None = None
        self.last_refusal: Refusal | None = None
        self._token: Hashable | None = None
        self._refused: Hashable | None = None
        self._retry = False  # set by wake(): try a refused version again
        self._wake: asyncio.Event | None = None

    # -- loading -----------------------------------------------------------------------------
    def start(self) -> Loaded:
        """Load what the source points to now; raise :class:`SourceError` when it points to
        nothing, :class:`~helpers.forecast.artifact.ArtifactError` (or the registry's
        ``RegistryError``) when that cannot be served."""
        token = self.source.current()
        if token is None:
            raise SourceError(self.source.nothing())
        served = self._load(token)
        self.challenger = self.source.challenger()
        self.last_check_utc = self.served_since_utc = _now()
        self.served, self._token = served, token
        return served

    def _load(self, token: Hashable) -> Loaded:
        fetched = self.source.fetch(token)
        try:
            return self.load(fetched.path, version=fetched.version, lineage=fetched.lineage, origin=fetched.origin)
        except ArtifactError as exc:
            if fetched.scratch is None:
                raise
            raise ArtifactError(str(exc).replace(str(fetched.path), fetched.origin)) from None
        finally:
            if fetched.scratch is not None:  # loaded into memory: the download is not needed
                shutil.rmtree(fetched.scratch, ignore_errors=True)

    def check(self) -> tuple[Hashable, Loaded] | None:
        """One check (in the follower's thread): what the source points to and its artifact,
        loaded, when that is new and can be served; else ``None`` (nothing changed, refused,
        or the source could not be read)."""
        try:
            token = self.source.current()
            self.challenger = self.source.challenger()
        except Exception as exc:  # noqa: BLE001 - the registry's client raises its own kinds; keep serving
            self._failed(f"cannot read {self.source.follows}: {type(exc).__name__}: {exc}")
            return None
        self.last_check_utc = _now()
        if token is None:
            self._failed(f"{self.source.nothing().rstrip('.')}; still serving {served_label(self.served)}")
            return None
        if self._retry:
            self._retry, self._refused = False, None
        if token == self._token or token == self._refused:
            self._worked()
            return None
        label = self.source.label(token)
        try:
            new = self._load(token)
        except (ArtifactError, ValueError, TypeError, KeyError) as exc:
            # ValueError includes the registry's RegistryError; TypeError and KeyError: a
            # structure load_artifact's checks let through (a date that is a number)
            self._worked()
            self._refuse(token, label, str(exc))
            return None
        except OSError as exc:  # the download or the read failed, not the artifact: try again next time
            self._failed(f"cannot read {label}: {type(exc).__name__}: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - the registry client's own errors (its server down mid-download)
            self._failed(f"cannot download {label}: {type(exc).__name__}: {exc}")
            return None
        self._worked()
        problem = self._incompatible(new)
        if problem:
            self._refuse(token, label, problem)
            return None
        return token, new

    def _incompatible(self, new: Loaded) -> str | None:
        old = self.served
        for what, mine, theirs in (("series", old.series_id, new.series_id),
                                   ("frequency", old.frequency, new.frequency)):
            if mine != theirs:
                return (f"it forecasts {what} {theirs!r} and the service serves {what} {mine!r}; restart the "
                        f"service to serve another {what}")
        return None

    def _refuse(self, token: Hashable, label: str, reason: str) -> None:
        self._refused = token
        version = token if isinstance(token, int) else None
        self.last_refusal = Refusal(label, version, reason, _now())
        _say(f"model source: refused {label}: {reason.rstrip('.')}; still serving {served_label(self.served)}")

    def _worked(self) -> None:
        """A check that read the source (and the version, if new) to the end."""
        if self.last_error is not None:
            _say(f"model source: {self.source.follows} can be read again")
            self.last_error = None

    def _failed(self, message: str) -> None:
        if message != self.last_error:
            _say(f"model source: {message}")
        self.last_error = message

    def _served(self, token: Hashable, new: Loaded) -> None:
        old, self.served, self._token = self.served, new, token
        self.served_since_utc = _now()
        _say(f"model source: now serving {served_label(new)} (was {served_label(old)})")

    # -- the loop ----------------------------------------------------------------------------
    def wake(self) -> None:
        """Check at once, trying a refused version again (SIGHUP)."""
        self._retry = True
        if self._wake is not None:
            self._wake.set()

    async def run(self, swap: Callable[[Loaded], None]) -> None:
        """Check every ``poll_seconds`` and on :meth:`wake`; ``swap(new)`` serves a new artifact
        (called on the event loop, so the one assignment it makes is atomic for requests)."""
        self._wake = asyncio.Event()
        try:
            while True:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                except TimeoutError:
                    pass
                self._wake.clear()
                try:
                    found = await _in_thread(self.check)
                except Exception as exc:  # noqa: BLE001 - a fault of the check itself: keep serving and checking
                    self._failed(f"a check of {self.source.follows} failed: {type(exc).__name__}: {exc}")
                    continue
                if found is not None:
                    swap(found[1])
                    self._served(*found)
        finally:
            self._wake = None

    def close(self) -> None:
        self.source.close()

    def status(self) -> dict[str, Any]:
        """``GET /health``'s ``model_source``."""
        served = self.served
        return {"mode": self.source.mode, "follows": self.source.follows, "poll_seconds": self.poll_seconds,
                "served_version": None if served is None else served.version,
                "served": None if served is None else served.origin, "served_since_utc": self.served_since_utc,
                "last_check_utc": self.last_check_utc, "last_check_error": self.last_error,
                "last_refusal": None if self.last_refusal is None else self.last_refusal.as_dict()}
