"""The lock of the runs that write: scheduled runs, operating cycles and the intake command.

``runs/.lock`` is held with ``flock`` for as long as a run lives; the holder's pid and start
time are written into it, so a run turned away can say who holds it and how to stop it.
"""

from __future__ import annotations

import fcntl
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from helpers.core.provenance import utc_now


class Busy(RuntimeError):
    """Another run (a scheduled run, a cycle, an intake) holds the lock."""


@contextmanager
def run_lock(runs: Path) -> Iterator[IO[str]]:
    """Hold ``runs/.lock`` exclusively for the block; :class:`Busy` at once if another process holds it.

    Yields the open lock file: a child started with its descriptor holds the lock too.
    """
    runs.mkdir(parents=True, exist_ok=True)
    handle = open(runs / ".lock", "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown holder"
            pids = re.findall(r"pid (\d+)", holder)
            raise Busy(f"another scheduled run holds {runs / '.lock'} ({holder}). It is still running: wait for it"
                       + (f", or stop it with `kill {pids[-1]}`" if pids else "")) from None
        note_holder(handle, f"pid {os.getpid()}, started {utc_now().isoformat(timespec='seconds')}Z")
        yield handle
    finally:
        handle.close()  # closing releases the flock, unless a child still has it open


def note_holder(handle: IO[str], text: str) -> None:
    """Write who holds the lock into the lock file (read by a run that is turned away)."""
    handle.seek(0)
    handle.truncate()
    handle.write(text + "\n")
    handle.flush()
