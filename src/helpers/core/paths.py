"""Every path in the project is built from one root, here."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository root: ``HELPERS_ROOT`` if set, else the folder holding ``src/helpers``.

    The package is installed in editable mode (``pip install -e .``), so its source
    folder (`src/helpers/core`) sits three levels under the root.
    """
    env_root = os.environ.get("HELPERS_ROOT")
    if env_root:
        return Path(env_root).resolve()
    return Path(__file__).resolve().parents[3]


def resolve(path: str | os.PathLike[str]) -> Path:
    """An absolute path: relative paths are taken from the project root, not the cwd.

    Notebooks run with their own folder as working directory, tasks with the root;
    resolving against the root makes one ``env.yaml`` value mean the same file in both.
    """
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p

