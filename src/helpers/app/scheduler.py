"""Unattended pipeline runs: ``make scheduled-run`` (``python -m helpers.app.scheduler``).

Each run builds the whole pipeline into its own folder, ``runs/<UTC time>/`` (executed
notebooks under ``products/``, rendered pages under ``reports/``, the build log in
``run.log`` and the outcome in ``status.json``), so a run never writes over another's
output. Only when the build succeeds is the run *published*: the ``runs/latest`` and
``reports`` symlinks are swapped to it, each in one atomic rename, so a reader sees the
previous good reports or the new ones, never a mix. A failed run exits non-zero, leaves
``reports`` on the previous good run and records what failed in its ``status.json``.

An exclusive lock (``runs/.lock``, ``flock``) lets one run at a time through; a run that
finds it held exits with :data:`EXIT_BUSY` without touching anything. The operating
system drops the lock when the holder dies, so a crashed run never blocks the next one.
The warehouse is shared by all runs (loading is an idempotent upsert).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from helpers.core.paths import project_root
from helpers.core.provenance import RUN_TIME_FORMAT, git_commit, utc_now

EXIT_FAILED = 1
EXIT_BUSY = 3
KEEP_RUNS = 14


class Busy(RuntimeError):
    """Another scheduled run holds the lock."""


@contextmanager
def run_lock(runs: Path):
    """Hold ``runs/.lock`` exclusively for the block; :class:`Busy` at once if another process holds it."""
    runs.mkdir(parents=True, exist_ok=True)
    handle = open(runs / ".lock", "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise Busy(f"another scheduled run holds {runs / '.lock'} ({handle.read().strip() or 'unknown holder'})")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {utc_now().isoformat(timespec='seconds')}Z\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock


def point(link: Path, target: Path) -> None:
    """Make ``link`` a relative symlink to ``target`` in one atomic rename.

    A real directory at ``link`` (left by a manual ``make run``) is kept: it is renamed
    to ``<link>.manual-<time>`` first, never deleted.
    """
    if link.exists() and not link.is_symlink():
        link.rename(link.with_name(f"{link.name}.manual-{utc_now():{RUN_TIME_FORMAT}}"))
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(target, link.parent))
    os.replace(tmp, link)


def prune(runs: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` run folders, never the published one; returns the deleted."""
    latest = (runs / "latest").resolve() if (runs / "latest").is_symlink() else None
    folders = sorted(p for p in runs.iterdir() if p.is_dir() and not p.is_symlink() and p.name[:1].isdigit())
    doomed = [p for p in folders[:-keep] if p.resolve() != latest] if keep > 0 else []
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def scheduled_run(root: Path | None = None, profile: str | None = None, keep: int = KEEP_RUNS,
                  command: list[str] | None = None) -> tuple[int, Path | None]:
    """One unattended build; returns (exit status, run folder). See the module docstring.

    ``command`` replaces the pipeline build (tests use a stand-in); it runs with
    ``HELPERS_PRODUCTS`` and ``HELPERS_REPORTS`` set to the run's folders.
    """
    root = root or project_root()
    runs = root / "runs"
    try:
        with run_lock(runs):
            started = utc_now()
            folder = runs / f"{started:{RUN_TIME_FORMAT}}Z"
            suffix = 1
            while folder.exists():  # two runs in one second, one after the other
                folder = runs / f"{started:{RUN_TIME_FORMAT}}Z-{suffix}"
                suffix += 1
            folder.mkdir(parents=True)
            env = {**os.environ, "PLOOMBER_STATS_ENABLED": "false",
                   "HELPERS_PRODUCTS": str(folder / "products"), "HELPERS_REPORTS": str(folder / "reports")}
            command = command or [sys.executable, "-m", "helpers.app.pipeline", "build",
                                  *(["--profile", profile] if profile else [])]
            with open(folder / "run.log", "w", encoding="utf-8") as log:
                log.write(f"$ {' '.join(command)}\n")
                log.flush()
                code = subprocess.run(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
            ok = code == 0 and (folder / "reports" / "index.html").exists()
            status = {
                "status": "ok" if ok else "failed", "exit_code": code,
                "started_utc": started.isoformat(timespec="seconds"),
                "finished_utc": utc_now().isoformat(timespec="seconds"),
                "profile": profile or os.environ.get("HELPERS_PROFILE") or "default",
                "git_commit": git_commit(root), "log": "run.log",
            }
            if not ok:
                status["failure"] = _tail(folder / "run.log")
            (folder / "status.json").write_text(json.dumps(status, indent=1), encoding="utf-8")
            if not ok:
                print(f"scheduled run failed (exit {code}); reports/ still shows the previous good run.\n"
                      f"log: {folder / 'run.log'}\n{_tail(folder / 'run.log', 10)}", file=sys.stderr)
                return EXIT_FAILED, folder
            point(runs / "latest", folder)
            point(root / "reports", folder / "reports")
            prune(runs, keep)
            print(f"scheduled run ok: {folder}; reports/ -> {folder / 'reports'}")
            return 0, folder
    except Busy as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return EXIT_BUSY, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.app.scheduler",
                                     description="One unattended pipeline run into runs/<time>/, published on success.")
    parser.add_argument("--profile", help="settings profile, e.g. 'test'")
    parser.add_argument("--keep", type=int, default=KEEP_RUNS, help=f"run folders to keep (default {KEEP_RUNS})")
    args = parser.parse_args(argv)
    code, _ = scheduled_run(profile=args.profile, keep=args.keep)
    return code


if __name__ == "__main__":
    sys.exit(main())
