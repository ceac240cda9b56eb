"""The model registry: each forecast artifact a version of one registered model, with lineage.

A version is an MLflow pyfunc model (:mod:`helpers.lifecycle.forecast_model`) around the
forecast artifact JSON, its pyfunc artifact ``forecast_artifact``, logged in the run of the
model comparison that made it. The store is the tracking store's
(:class:`helpers.lifecycle.tracking.Store`); the model is named by ``registry_model``.

- Aliases: ``champion`` is the version served; ``challenger`` the newest candidate. Promoting
  moves ``champion`` (the version loses ``challenger`` if it held it).
- Lineage: version tags (:data:`LINEAGE`) taken from the artifact, plus the run id.
- Champion history: the registered model's tag ``champion_history`` holds the versions that
  were champion before the current one, oldest first, as a JSON list (the last
  :data:`HISTORY_LIMIT`). ``promote`` appends the outgoing champion; ``rollback`` makes the last
  one champion again and drops it. The alias moves before the history is written on rollback
  and after on promote, so an interruption leaves at most a trailing entry equal to the
  champion, which is skipped.

Every refusal (an unknown version, one whose artifact is missing, corrupt or fails
:func:`helpers.forecast.artifact.load_artifact`, one for another series or frequency than the
champion, a rollback with no previous champion) raises :class:`RegistryError` before anything
is written. Reading a local store that was never made finds no versions and makes nothing.

Command: ``python -m helpers.lifecycle.registry list | show REF | promote N | rollback``
(``make models``, ``make promote VERSION=N``, ``make rollback``). Exit status: 0 done, 1 an
unexpected error, 2 refused (nothing changed), 3 the store could not be used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers.core.settings import ConfigError, load_settings
from helpers.forecast.artifact import ArtifactError, load_artifact
from helpers.lifecycle.tracking import Store, TrackingError, import_mlflow

if TYPE_CHECKING:
    from mlflow import MlflowClient

CHAMPION, CHALLENGER = "champion", "challenger"
ALIASES = (CHAMPION, CHALLENGER)
#: Version tags, from the artifact (``cv_*``: the selected model's CV metrics pooled over the evaluation folds).
LINEAGE = ("run_id", "series_id", "frequency", "training_start", "training_end", "data_sha256", "git_commit",
           "selected_model", "cv_mae", "cv_rmse", "created_utc")
#: What must match the champion's for a version to replace it.
COMPATIBLE = ("series_id", "frequency")
HISTORY_TAG = "champion_history"
HISTORY_LIMIT = 200
ARTIFACT_NAME = "forecast_artifact.json"
MODEL_CODE = Path(__file__).with_name("forecast_model.py")
LIST_COMMAND = "`make models` lists them"
#: Libraries whose errors mean the store could not be used (the server, the database): exit 3.
STORE_LIBRARIES = ("mlflow", "sqlalchemy", "requests", "urllib3")


class RegistryError(ValueError):
    """A registry operation was refused; nothing was changed. The message says why and what to do."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: its number, aliases, the run that made it, and its tags: the lineage
    (:data:`LINEAGE`) and any other a person or a later step added (MLflow's own ``mlflow.*`` left out)."""

    version: int
    aliases: tuple[str, ...]
    run_id: str
    lineage: dict[str, str]


def lineage(payload: dict[str, Any], run_id: str) -> dict[str, str]:
    """The version tags of :data:`LINEAGE` for the artifact ``payload`` logged in ``run_id``."""
    cv = payload["models"][payload["selected_model"]]["cv"]
    tags = {key: str(payload[key]) for key in LINEAGE if key in payload}
    return {**tags, "run_id": run_id, "cv_mae": repr(float(cv["mae"])), "cv_rmse": repr(float(cv["rmse"]))}


def incompatibility(payload: dict[str, Any], what: str, champion: ModelVersion | None) -> str | None:
    """Why the artifact ``payload`` (described as ``what``) cannot replace ``champion``: another
    series or frequency; None when it can (or there is no champion)."""
    if champion is None:
        return None
    for key in COMPATIBLE:
        theirs = champion.lineage.get(key)
        if theirs is not None and str(payload[key]) != theirs:
            return (f"{what} forecasts {key} {payload[key]!r} but the champion (version {champion.version}) "
                    f"{theirs!r}, so it cannot replace it; register another series under its own name "
                    "(set registry_model in env.yaml or HELPERS_REGISTRY_MODEL)")
    return None


def _version_number(ref: Any) -> int:
    text = str(ref).strip()
    if isinstance(ref, bool) or not text.isdigit() or int(text) < 1:
        raise RegistryError(f"{ref!r} is not a version: give a version number (1, 2, ...), champion or challenger")
    return int(text)


class Registry:
    """The registered model ``name`` in ``store``; one MLflow client, made on first use."""

    def __init__(self, store: Store, name: str):
        self.store, self.name = store, name
        self._client: MlflowClient | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> Registry:
        """The registry of ``settings``: anything with ``mlflow_dir``, ``mlflow_experiment`` and
        ``registry_model`` (``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI`` win)."""
        return cls(Store.from_settings(settings), settings.registry_model)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = self.store.client()
        return self._client

    # -- reading -------------------------------------------------------------------------------------------
    def _registered(self) -> Any | None:
        """The registered model, or None when the store or the model was never made."""
        if not self.store.exists():
            return None
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(self.name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def _version(self, entity: Any, aliases: tuple[str, ...]) -> ModelVersion:
        tags = {k: v for k, v in entity.tags.items() if not k.startswith("mlflow.")}
        return ModelVersion(int(entity.version), tuple(sorted(aliases)), entity.run_id or tags.get("run_id", ""), tags)

    def versions(self) -> list[ModelVersion]:
        """Every version, newest first."""
        model = self._registered()
        if model is None:
            return []
        by_version: dict[int, list[str]] = {}
        for alias, number in model.aliases.items():
            by_version.setdefault(int(number), []).append(alias)
        found, token = [], None
        while True:
            page = self.client.search_model_versions(f"name = '{self.name}'", page_token=token)
            found += page
            token = page.token
            if not token:
                break
        return sorted((self._version(v, tuple(by_version.get(int(v.version), ()))) for v in found),
                      key=lambda v: -v.version)

    def get(self, ref: str | int) -> ModelVersion | None:
        """The version an alias (``champion``, ``challenger``) or a number names; None when there is none."""
        alias = ref.strip().lower() if isinstance(ref, str) else None
        number = None if alias in ALIASES else _version_number(ref)
        model = self._registered()
        if model is None:
            return None
        if number is None:
            if alias not in model.aliases:
                return None
            number = int(model.aliases[alias])
        from mlflow.exceptions import MlflowException

        try:
            entity = self.client.get_model_version(self.name, str(number))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return self._version(entity, tuple(entity.aliases))

    def find(self, created_utc: str, data_sha256: str) -> ModelVersion | None:
        """The version holding the artifact made at ``created_utc`` from data ``data_sha256``, if any."""
        return next((v for v in self.versions() if v.lineage.get("created_utc") == created_utc
                     and v.lineage.get("data_sha256") == data_sha256), None)

    def history(self) -> list[int]:
        """The versions that were champion before the current one, oldest first (module docstring)."""
        model = self._registered()
        text = model.tags.get(HISTORY_TAG, "[]") if model is not None else "[]"
        try:
            history = json.loads(text)
            if not isinstance(history, list) or not all(isinstance(v, int) and v > 0 for v in history):
                raise ValueError
        except ValueError:
            raise RegistryError(f"the tag {HISTORY_TAG} of {self.name} is not a JSON list of version numbers "
                                f"({text[:80]!r}); correct it in the MLflow UI (make mlflow-ui)") from None
        return history

    def _require(self, version: int | str) -> ModelVersion:
        found = self.get(_version_number(version))
        if found is None:
            raise RegistryError(f"{self.name} has no version {version} in {self.store.where}; "
                                f"{LIST_COMMAND}")
        return found

    def artifact(self, version: int, dest_dir: Path) -> Path:
        """The version's forecast artifact, downloaded into ``dest_dir`` as
        ``forecast_artifact-v<version>.json`` once it passes ``load_artifact``."""
        number = self._require(version).version
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / f"forecast_artifact-v{number}.json"
        with tempfile.TemporaryDirectory(prefix=".download-", dir=dest_dir) as tmp:
            local = self._download(number, Path(tmp))
            os.replace(local, target)
        return target

    def _download(self, number: int, folder: Path) -> Path:
        """The version's artifact downloaded into ``folder`` and checked."""
        mlflow = import_mlflow()
        from mlflow.exceptions import MlflowException

        try:
            uri = self.client.get_model_version_download_uri(self.name, str(number))
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{uri}/artifacts/{ARTIFACT_NAME}",
                                                             dst_path=str(folder),
                                                             tracking_uri=self.store.tracking_uri))
            load_artifact(local)
        except (MlflowException, OSError) as exc:
            raise RegistryError(f"version {number} of {self.name} has no readable forecast artifact "
                                f"({_first_line(exc)}); choose another version ({LIST_COMMAND})") from None
        except ArtifactError as exc:
            raise RegistryError(f"version {number} of {self.name} has an unusable forecast artifact "
                                f"({_first_line(exc).rstrip('.')}); choose another version ({LIST_COMMAND})") from None
        return local

    def _servable(self, number: int) -> dict[str, Any]:
        """The version's artifact, read back from the store: it must pass ``load_artifact``."""
        with tempfile.TemporaryDirectory(prefix="registry-check-") as tmp:
            return load_artifact(self._download(number, Path(tmp)))

    def _check_compatible(self, payload: dict[str, Any], what: str, champion: ModelVersion | None) -> None:
        reason = incompatibility(payload, what, champion)
        if reason is not None:
            raise RegistryError(reason)

    # -- writing -------------------------------------------------------------------------------------------
    def register(self, artifact_path: Path, run_id: str | None = None, alias: str | None = None) -> ModelVersion:
        """Register the artifact at ``artifact_path`` as a new version logged in ``run_id`` (a new run
        when None), with ``alias`` if given; an artifact already registered (same ``created_utc`` and
        ``data_sha256``) is not registered again: its version is returned unchanged."""
        if alias not in (None, *ALIASES):
            raise RegistryError(f"alias {alias!r} is not one of {', '.join(ALIASES)}")
        try:
            payload = load_artifact(artifact_path)
        except ArtifactError as exc:
            raise RegistryError(f"cannot register {artifact_path}: {_first_line(exc)}") from None
        existing = self.find(payload["created_utc"], payload["data_sha256"])
        if existing is not None:
            return existing
        champion = self.get(CHAMPION)
        if alias is not None:
            self._check_compatible(payload, f"the artifact {artifact_path}", champion)
        if run_id is None:
            run_id = self._new_run(payload)
        else:
            self._require_run(run_id)
        model_id, source = self._log_model(payload, Path(artifact_path), run_id)
        self._ensure_model()
        entity = self.client.create_model_version(self.name, source, run_id=run_id, tags=lineage(payload, run_id),
                                                  model_id=model_id)
        number = int(entity.version)
        if alias == CHAMPION:
            self._make_champion(number, champion)
        elif alias == CHALLENGER:
            self.client.set_registered_model_alias(self.name, CHALLENGER, str(number))
        return self._require(number)

    def promote(self, version: int) -> ModelVersion:
        """Make ``version`` the champion; the outgoing champion joins the history (rollback's target)."""
        target = self._require(version)
        champion = self.get(CHAMPION)
        if champion is not None and champion.version == target.version:
            raise RegistryError(f"version {target.version} is already the champion of {self.name}; nothing changed")
        payload = self._servable(target.version)
        self._check_compatible(payload, f"version {target.version}", champion)
        self._make_champion(target.version, champion)
        return self._require(target.version)

    def rollback(self) -> ModelVersion:
        """Make the previous champion the champion again; returns it."""
        champion = self.get(CHAMPION)
        if champion is None:
            raise RegistryError(f"{self.name} has no champion to roll back from; `make run` registers the first")
        history = self.history()
        while history and history[-1] == champion.version:  # left by an interrupted promote (module docstring)
            history.pop()
        if not history:
            raise RegistryError(f"version {champion.version} is the first champion of {self.name}: there is no "
                                "previous champion to roll back to; promote a version instead (make promote VERSION=N)")
        previous = history[-1]
        if self.get(previous) is None:
            raise RegistryError(f"the previous champion, version {previous}, is no longer in {self.name} (deleted); "
                                "promote a version instead (make promote VERSION=N)")
        self._check_compatible(self._servable(previous), f"version {previous}", champion)
        self._move_champion(previous)
        self.client.set_registered_model_tag(self.name, HISTORY_TAG, json.dumps(history[:-1]))
        return self._require(previous)

    def _make_champion(self, number: int, champion: ModelVersion | None) -> None:
        if champion is not None:
            history = [*self.history(), champion.version]
            self.client.set_registered_model_tag(self.name, HISTORY_TAG, json.dumps(history[-HISTORY_LIMIT:]))
        self._move_champion(number)

    def _move_champion(self, number: int) -> None:
        """``champion`` to ``number``, which gives up ``challenger`` if it held it."""
        self.client.set_registered_model_alias(self.name, CHAMPION, str(number))
        model = self.client.get_registered_model(self.name)
        if int(model.aliases.get(CHALLENGER, 0)) == number:
            self.client.delete_registered_model_alias(self.name, CHALLENGER)

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        if self._registered() is not None:
            return
        try:
            self.client.create_registered_model(
                self.name, tags={HISTORY_TAG: "[]"},
                description="Daily demand forecaster: each version is a forecast artifact (pyfunc artifact "
                            "forecast_artifact) from one model comparison; champion is served.")
        except MlflowException as exc:  # made by another process meanwhile
            if self._registered() is None:
                raise exc

    def _require_run(self, run_id: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
        except MlflowException:
            raise RegistryError(f"no MLflow run {run_id!r} in {self.store.runs_where}; give the run of the "
                                "comparison that made the artifact, or none for a new run") from None

    def _new_run(self, payload: dict[str, Any]) -> str:
        """A run that holds only the model, for an artifact registered without its comparison's run."""
        run = self.client.create_run(self.store.experiment_id(self.client),
                                     run_name=f"registration {payload['created_utc']}",
                                     tags={k: v for k, v in lineage(payload, "").items() if k != "run_id"})
        self.client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    def _log_model(self, payload: dict[str, Any], artifact_path: Path, run_id: str) -> tuple[str, str]:
        """Log the pyfunc model in ``run_id``; returns its model id and where its files are."""
        mlflow = import_mlflow()
        import pandas as pd
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus
        from mlflow.models import Model

        experiment_id = self.client.get_run(run_id).info.experiment_id
        logged = self.client.create_logged_model(experiment_id, name="forecast", source_run_id=run_id,
                                                 tags={"series_id": str(payload["series_id"])})
        try:
            self.client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
            first = payload["models"][payload["selected_model"]]["forecast"]["ds"][0][:10]
            example = pd.DataFrame({"start_date": [first], "end_date": [first], "model": [payload["selected_model"]]})
            with tempfile.TemporaryDirectory(prefix="registry-model-") as tmp:
                artifact, code = Path(tmp) / ARTIFACT_NAME, Path(tmp) / MODEL_CODE.name
                shutil.copyfile(artifact_path, artifact)
                shutil.copyfile(MODEL_CODE, code)  # MLflow runs the code it saves: a copy, not the package's module
                local = Path(tmp) / "model"
                mlflow.pyfunc.save_model(
                    str(local), python_model=str(code), artifacts={"forecast_artifact": str(artifact)},
                    signature=_signature(), input_example=example,
                    pip_requirements=[f"mlflow=={mlflow.__version__}", f"pandas=={pd.__version__}"],
                    mlflow_model=Model(artifact_path=logged.artifact_location, model_uuid=logged.model_id,
                                       run_id=run_id, model_id=logged.model_id))
                self.client.log_model_artifacts(logged.model_id, str(local))
        except BaseException:
            self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
            raise
        self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        return logged.model_id, logged.artifact_location


@dataclass(frozen=True)
class Registration:
    """What :func:`register_comparison` did: the version, whether it is new, and a sentence for people."""

    version: ModelVersion
    new: bool
    note: str


def register_comparison(registry: Registry, selection_path: str | Path, artifact_path: str | Path) -> Registration:
    """Log the model comparison (:func:`helpers.lifecycle.tracking.log_comparison`) and register its
    artifact: the first version becomes ``champion``, later ones ``challenger`` (promotion is for
    the retraining rule or a person: ``make promote``). An artifact already registered is left
    as it is, with no new run; one for another series or frequency than the champion is
    registered without an alias, and the note says why."""
    from helpers.lifecycle.tracking import log_comparison

    try:
        payload = load_artifact(artifact_path)
    except ArtifactError as exc:
        raise RegistryError(f"cannot register {artifact_path}: {_first_line(exc)}") from None
    existing = registry.find(payload["created_utc"], payload["data_sha256"])
    champion = registry.get(CHAMPION)
    if existing is not None:
        if champion is None:  # the first registration stopped before its alias was set
            existing = registry.promote(existing.version)
        return Registration(existing, False, f"the forecast artifact of {payload['created_utc']} is already version "
                                             f"{existing.version} of {registry.name}; nothing was registered")
    reason = incompatibility(payload, "this artifact", champion)
    alias = None if reason else CHAMPION if champion is None else CHALLENGER
    run_id = log_comparison(registry.store, selection_path, artifact_path, client=registry.client)
    version = registry.register(Path(artifact_path), run_id=run_id, alias=alias)
    if alias == CHAMPION:
        note = f"this run registered version {version.version} of {registry.name} as champion (the first)"
    elif alias == CHALLENGER:
        note = (f"this run registered version {version.version} of {registry.name} as challenger; the champion is "
                f"still version {champion.version} (`make promote VERSION={version.version}` serves it)")
    else:
        note = f"this run registered version {version.version} of {registry.name} without an alias: {reason}"
    return Registration(version, True, note)


def _signature() -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", "start_date"), ColSpec("string", "end_date"),
                       ColSpec("string", "model", required=False)]),
        outputs=Schema([ColSpec("long", "request"), ColSpec("string", "ds"), ColSpec("string", "model"),
                        *(ColSpec("double", c) for c in ("mean", "lo-80", "hi-80", "lo-95", "hi-95"))]))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- command line ----------------------------------------------------------------------------------------------
def _short(text: str | None, n: int = 12) -> str:
    return (text or "-")[:n]


def _number(text: str | None) -> str:
    try:
        return f"{float(text):.4g}"
    except (TypeError, ValueError):
        return "-"


def table(versions: list[ModelVersion]) -> str:
    """The versions as a plain-text table: version, aliases, created, training range, selected
    model, cv_mae, data hash and commit (both shortened)."""
    header = ("version", "aliases", "created (UTC)", "training", "selected model", "cv_mae", "data", "commit")
    rows = [header] + [(
        str(v.version), ",".join(v.aliases) or "-", v.lineage.get("created_utc", "-").replace("T", " "),
        f"{_short(v.lineage.get('training_start'), 10)} to {_short(v.lineage.get('training_end'), 10)}",
        v.lineage.get("selected_model", "-"), _number(v.lineage.get("cv_mae")), _short(v.lineage.get("data_sha256")),
        _short(v.lineage.get("git_commit"))) for v in versions]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) if i == 0 else cell.ljust(w) for i, (cell, w) in
                               enumerate(zip(row, widths))).rstrip() for row in rows)


def describe(version: ModelVersion, registry: Registry) -> str:
    """One version, a line per fact: aliases, run, lineage, how to load it."""
    lines = [f"version {version.version} of {registry.name} ({registry.store.where})",
             f"aliases: {', '.join(version.aliases) or 'none'}", f"run_id: {version.run_id}"]
    lines += [f"{key}: {value}" for key, value in sorted(version.lineage.items()) if key != "run_id"]
    lines.append(f"load it: mlflow.pyfunc.load_model('models:/{registry.name}/{version.version}')")
    return "\n".join(lines)


def run_command(args: argparse.Namespace, registry: Registry) -> str:
    """What the command prints; raises :class:`RegistryError` for a refusal."""
    if args.command == "list":
        versions = registry.versions()
        if not versions:
            return (f"{registry.name} has no versions in {registry.store.where} yet; `make run` registers "
                    "the first as champion")
        return table(versions)
    if args.command == "show":
        found = registry.get(args.ref)
        if found is None:
            raise RegistryError(f"{registry.name} has no version {args.ref} in {registry.store.where}; "
                                f"{LIST_COMMAND}")
        return describe(found, registry)
    before = registry.get(CHAMPION)
    if args.command == "promote":
        after = registry.promote(_version_number(args.version))
        was = f"it was version {before.version}; `make rollback` goes back to it" if before else "the first champion"
        return f"version {after.version} of {registry.name} is now the champion ({was})"
    after = registry.rollback()
    return f"version {after.version} of {registry.name} is the champion again (it was version {before.version})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.lifecycle.registry", description="The registered forecast model's versions.",
        epilog="exit status: 0 done, 1 an unexpected error, 2 refused (nothing changed), 3 the store could not be used")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every version, newest first")
    sub.add_parser("show", help="one version's aliases and lineage").add_argument(
        "ref", help="a version number, champion or challenger")
    sub.add_parser("promote", help="make a version the champion").add_argument("version")
    sub.add_parser("rollback", help="make the previous champion the champion again")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines (making tables, validating) are noise here
    registry = None
    try:
        registry = Registry.from_settings(load_settings())
        print(run_command(args, registry))
    except (ConfigError, RegistryError, TrackingError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in STORE_LIBRARIES:
            where = registry.store.where if registry is not None else "the settings' store"
            print(f"unavailable: the MLflow store {where} could not be used ({_first_line(exc)}); check "
                  "MLFLOW_TRACKING_URI / mlflow_dir and try again", file=sys.stderr)
            return 3
        print(f"error: {type(exc).__name__}: {_first_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
