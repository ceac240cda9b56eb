"""Provenance stamps: data hash, package versions, git commit, parameters."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from helpers.core.paths import project_root

#: The packages whose versions every report shows.
KEY_PACKAGES = (
    "pandas", "numpy", "scipy", "statsmodels", "statsforecast", "pmdarima", "prophet", "pymc", "arviz",
    "duckdb", "sqlglot", "snowflake-connector-python", "ploomber", "papermill", "plotly",
)


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed version of each package, or ``'not installed'``."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(root: Path | None = None) -> str:
    """The checked-out commit, with ``-dirty`` when the work tree has changes; ``unknown`` outside git."""
    root = root or project_root()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


#: How a run's start time is written in run ids and run folder names (UTC, sortable).
RUN_TIME_FORMAT = "%Y%m%dT%H%M%S"


def new_run_id(started: datetime) -> str:
    """A unique id for a load run: its UTC start time and 8 random hex digits."""
    return f"{started:{RUN_TIME_FORMAT}}-{uuid.uuid4().hex[:8]}"


def utc_now() -> datetime:
    """Current UTC time without tz info (the warehouse stores naive UTC run times)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def stamp(parameters: dict[str, Any], data_file: str | Path | None = None) -> dict[str, Any]:
    """Everything a reader needs to reproduce a report: parameters, data hash, versions, commit."""
    return {
        "run_time_utc": utc_now().isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "data_file": str(data_file) if data_file else None,
        "data_sha256": file_sha256(data_file) if data_file and Path(data_file).exists() else None,
        "parameters": {k: str(v) for k, v in parameters.items()},
        "packages": package_versions(),
    }
