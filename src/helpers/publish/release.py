"""Publishing a folder so that readers see the old one or the new one, never a mix or none.

A published path (``reports``, ``runs/latest``) is a symlink. A build writes into a fresh
folder beside it (``reports.<UTC time>``, :func:`new_folder`), and only when the whole
folder is written does :func:`publish` swap the symlink to it, in one atomic rename. A build
that fails leaves the symlink where it was; its folder stays for inspection until the next
successful publish retires it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from helpers.core.provenance import RUN_TIME_FORMAT, utc_now


def new_folder(link: Path) -> Path:
    """Create and return an empty folder beside ``link``, named ``<link name>.<UTC time>Z``."""
    stamp = f"{utc_now():{RUN_TIME_FORMAT}}Z"
    folder = link.with_name(f"{link.name}.{stamp}")
    suffix = 1
    while True:
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:  # two builds in one second
            folder = link.with_name(f"{link.name}.{stamp}-{suffix}")
            suffix += 1


def own_folders(link: Path) -> list[Path]:
    """The folders :func:`new_folder` made for ``link`` (``<link name>.<digit>...``)."""
    if not link.parent.is_dir():
        return []
    return sorted(p for p in link.parent.glob(f"{link.name}.[0-9]*") if p.is_dir() and not p.is_symlink())


def point(link: Path, target: Path) -> None:
    """Make ``link`` a relative symlink to ``target`` in one atomic rename.

    A real directory at ``link`` (left by an older version or by hand) is kept: it is
    renamed to ``<link>.manual-<time>`` first, never deleted. An empty one (Ploomber makes
    a product's folder before its task runs) is removed.
    """
    if link.is_dir() and not link.is_symlink():
        if any(link.iterdir()):
            link.rename(link.with_name(f"{link.name}.manual-{utc_now():{RUN_TIME_FORMAT}}"))
        else:
            link.rmdir()
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(target, link.parent))
    os.replace(tmp, link)


def publish(link: Path, folder: Path) -> list[Path]:
    """Point ``link`` at ``folder`` atomically, then delete ``link``'s other own folders.

    Returns the folders deleted: the previously published one and any left by a failed
    build. Folders elsewhere (a scheduled run's) are never touched here.
    """
    point(link, folder)
    retired = [p for p in own_folders(link) if p.resolve() != folder.resolve()]
    for path in retired:
        shutil.rmtree(path, ignore_errors=True)
    return retired
