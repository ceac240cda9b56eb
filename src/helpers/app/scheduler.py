"""Unattended pipeline runs: ``make scheduled-run`` (``python -m helpers.app.scheduler``).

Each run builds the whole pipeline into its own folder, ``runs/<UTC time>/`` (executed
notebooks under ``products/``, rendered pages under ``reports/``, the build log in
``run.log`` and the outcome in ``status.json``), so a run never writes over another's
output. Only when the build succeeds is the run *published*: the ``runs/latest`` and
``reports`` symlinks are swapped to it, each in one atomic rename, so a reader sees the
previous good reports or the new ones, never a mix. A failed run leaves ``reports`` on the
previous good run and records what failed in its ``status.json``.

One run at a time, for as long as any process of it lives. An exclusive lock
(``runs/.lock``, ``flock``) is taken before anything else; a run that finds it held exits
with :data:`EXIT_BUSY` without touching anything. The build is started with the lock's file
descriptor (``pass_fds``): an flock belongs to the open file, which parent and child then
share, so the lock is held until both have exited, even when the scheduler itself is killed
with ``kill -9``. The build is also told to stop when the scheduler dies (Linux
``PR_SET_PDEATHSIG``: it gets SIGTERM, puts back what it was writing and exits), so it
does not run on unpublished.

Every exit that can write ``status.json`` writes one: ``ok``, ``failed``, or ``terminated``
(the scheduler got SIGTERM, SIGINT or SIGHUP: it stops the build, waits for it, then
records it). Only ``kill -9`` or a power cut leaves a run folder without one; the next run,
holding the lock so that no other run can be alive, marks such folders ``abandoned``.

Exit status: 0 published, 1 failed or terminated, 2 the build refused its input, 3 busy
(another run holds the lock) or the warehouse was unavailable. The warehouse is shared by
all runs (loading is an idempotent upsert).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from helpers.core.locks import Busy, note_holder, run_lock
from helpers.core.paths import project_root
from helpers.core.provenance import RUN_TIME_FORMAT, git_commit, utc_now
from helpers.publish.release import point, publish

EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_BUSY = 3
#: A build's own codes the scheduler returns as they are: input refused, warehouse unavailable.
PASSED_ON = (EXIT_REFUSED, 3)
KEEP_RUNS = 14
#: Seconds a build gets to stop after SIGTERM before it is killed.
STOP_GRACE = 30.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def prune(runs: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` run folders, never the published one; returns the deleted."""
    latest = (runs / "latest").resolve() if (runs / "latest").is_symlink() else None
    doomed = [p for p in run_folders(runs)[:-keep] if p.resolve() != latest] if keep > 0 else []
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def run_folders(runs: Path) -> list[Path]:
    """The run folders under ``runs``, oldest first."""
    return sorted(p for p in runs.iterdir() if p.is_dir() and not p.is_symlink() and p.name[:1].isdigit())


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def write_status(folder: Path, status: dict[str, Any]) -> None:
    """Write ``status.json`` atomically (a reader never sees half of one)."""
    tmp = folder / ".status.json.tmp"
    tmp.write_text(json.dumps(status, indent=1), encoding="utf-8")
    os.replace(tmp, folder / "status.json")


def mark_abandoned(runs: Path, by: str) -> list[Path]:
    """Give every run folder without ``status.json`` one saying ``abandoned``; returns them.

    Call with the lock held: then no run that could still write its status is alive.
    """
    marked = []
    for folder in run_folders(runs):
        if (folder / "status.json").exists():
            continue
        write_status(folder, {
            "status": "abandoned", "marked_utc": utc_now().isoformat(timespec="seconds"), "marked_by": by,
            "note": "the run ended without recording an outcome (its scheduler was killed with kill -9, or the "
                    "machine stopped); nothing of it was published",
            "log": "run.log", "failure": _tail(folder / "run.log"),
        })
        marked.append(folder)
    return marked


def _stop_with_parent(parent: int):
    """A ``preexec_fn``: the child gets SIGTERM when its parent dies (Linux), also if it already has."""
    def arm() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    return arm if sys.platform.startswith("linux") else None


def run_build(command: list[str], root: Path, env: dict[str, str], log: IO[str], lock: IO[str],
              grace: float = STOP_GRACE) -> tuple[int, str | None]:
    """Run the build to its end; returns (its exit status, the signal that stopped the scheduler or None).

    The build inherits the lock. SIGTERM, SIGINT or SIGHUP to the scheduler is passed on to
    the build as SIGTERM; after ``grace`` seconds it is killed.
    """
    received: list[int] = []
    proc = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                            pass_fds=(lock.fileno(),), preexec_fn=_stop_with_parent(os.getpid()))

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signum)
        if proc.poll() is None:
            proc.terminate()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        note_holder(lock, f"pid {os.getpid()}, build pid {proc.pid}, started "
                           f"{utc_now().isoformat(timespec='seconds')}Z, log {log.name}")
        stop_at = None
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if received and stop_at is None:
                    stop_at = time.monotonic() + grace
                if stop_at is not None and time.monotonic() > stop_at:
                    proc.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code, (signal.Signals(received[0]).name if received else None)


def scheduled_run(root: Path | None = None, profile: str | None = None, keep: int = KEEP_RUNS,
                  command: list[str] | None = None, reports: Path | None = None) -> tuple[int, Path | None]:
    """One unattended build; returns (exit status, run folder). See the module docstring.

    ``command`` replaces the pipeline build (tests use a stand-in); it runs with
    ``HELPERS_PRODUCTS`` and ``HELPERS_REPORTS`` set to the run's folders. ``reports`` is the
    link a good run is published as (the ``reports`` setting; default ``<root>/reports``).
    ``runs/`` may be a link to another place (the container's volume): the run folders are
    made where it points, so ``reports`` there links to them with a path inside it.
    """
    root = root or project_root()
    runs = (root / "runs").resolve()
    reports = reports or root / "reports"
    try:
        with run_lock(runs) as lock:
            started = utc_now()
            folder = runs / f"{started:{RUN_TIME_FORMAT}}Z"
            suffix = 1
            while folder.exists():  # two runs in one second, one after the other
                folder = runs / f"{started:{RUN_TIME_FORMAT}}Z-{suffix}"
                suffix += 1
            for old in mark_abandoned(runs, by=folder.name):
                print(f"note: {old} had no status.json (its run was killed); marked abandoned.", file=sys.stderr)
            folder.mkdir(parents=True)
            env = {**os.environ, "PLOOMBER_STATS_ENABLED": "false",
                   "HELPERS_PRODUCTS": str(folder / "products"), "HELPERS_REPORTS": str(folder / "reports")}
            command = command or [sys.executable, "-m", "helpers.app.pipeline", "build",
                                  *(["--profile", profile] if profile else [])]
            with open(folder / "run.log", "w", encoding="utf-8") as log:
                log.write(f"$ {' '.join(command)}\n")
                log.flush()
                code, stopped_by = run_build(command, root, env, log, lock)
            ok = code == 0 and stopped_by is None and (folder / "reports" / "index.html").exists()
            state = "ok" if ok else "terminated" if stopped_by else "failed"
            status = {
                "status": state, "exit_code": code,
                "started_utc": started.isoformat(timespec="seconds"),
                "finished_utc": utc_now().isoformat(timespec="seconds"),
                "profile": profile or os.environ.get("HELPERS_PROFILE") or "default",
                "git_commit": git_commit(root), "log": "run.log",
            }
            if stopped_by:
                status["signal"] = stopped_by
            if not ok:
                status["failure"] = _tail(folder / "run.log")
            write_status(folder, status)
            if not ok:
                why = f"stopped by {stopped_by}" if stopped_by else f"failed (build exit {code})"
                print(f"scheduled run {why}; reports/ still shows the previous good run.\n"
                      f"log: {folder / 'run.log'}\n{_tail(folder / 'run.log', 10)}\n"
                      "Fix the cause, then run `make scheduled-run` again.", file=sys.stderr)
                return (code if code in PASSED_ON and not stopped_by else EXIT_FAILED), folder
            point(runs / "latest", folder)
            publish(reports, folder / "reports")
            prune(runs, keep)
            print(f"scheduled run ok: {folder}; {reports} -> {folder / 'reports'}")
            return 0, folder
    except Busy as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return EXIT_BUSY, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.app.scheduler",
                                     description="One unattended pipeline run into runs/<time>/, published on success.",
                                     epilog="exit status: 0 published, 1 failed or terminated, 2 the build refused "
                                            "its input, 3 busy or the warehouse was unavailable")
    parser.add_argument("--profile", help="settings profile, e.g. 'test'")
    parser.add_argument("--keep", type=int, default=KEEP_RUNS, help=f"run folders to keep (default {KEEP_RUNS})")
    args = parser.parse_args(argv)
    from helpers.core.paths import resolve
    from helpers.core.settings import ConfigError, raw_settings

    try:  # published where the settings put reports (HELPERS_REPORTS), as a build does
        reports = resolve(str(raw_settings(args.profile)["reports"]))
    except ConfigError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    code, _ = scheduled_run(profile=args.profile, keep=args.keep, reports=reports)
    return code


if __name__ == "__main__":
    sys.exit(main())
