"""The scheduled-run lock covers the whole build, and every run folder ends with a status.

The builds here are stand-ins (small Python processes), real subprocesses of a real
scheduler process, so killing the scheduler does to them what it does to a pipeline build.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from helpers.app import scheduler
from tests.reliability.conftest import alive, wait_for

GOOD = [sys.executable, "-c", "import os, pathlib; p = pathlib.Path(os.environ['HELPERS_REPORTS']); "
        "p.mkdir(parents=True); (p / 'index.html').write_text('ok')"]
# A slow build: records its pid, and on SIGTERM takes STOPPING seconds to put things back before it exits.
STOPPING = 3
SLOW = [sys.executable, "-c", f"""
import os, pathlib, signal, sys, time
run = pathlib.Path(os.environ['HELPERS_PRODUCTS']).parent
def stop(signum, frame):
    (run / 'build.stopping').write_text(signal.Signals(signum).name)
    time.sleep({STOPPING})
    sys.exit(1)
signal.signal(signal.SIGTERM, stop)
(run / 'build.pid').write_text(str(os.getpid()))
time.sleep(60)
"""]


def start_scheduler(root: Path, command: list[str], processes: list) -> tuple[subprocess.Popen, Path, int]:
    """A scheduler process running ``command``; returns it, its run folder and the build's pid once started."""
    code = ("import sys; from pathlib import Path; from helpers.app import scheduler; "
            f"sys.exit(scheduler.scheduled_run(Path({str(root)!r}), command={command!r})[0])")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    processes.append(proc)
    pid_file = wait_for(lambda: next((root / "runs").glob("*/build.pid"), None) if (root / "runs").exists() else None,
                        what="the build starting")
    pid = int(wait_for(pid_file.read_text, what="the build writing its pid"))
    processes.append(pid)
    return proc, pid_file.parent, pid


def status(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


def test_kill_9_of_the_scheduler_keeps_the_lock_until_its_build_has_stopped(tmp_path, processes, capsys):
    first, folder, build = start_scheduler(tmp_path, SLOW, processes)
    first.kill()  # kill -9: no handler runs, nothing is written
    first.wait(timeout=10)
    first.stderr.close()

    assert alive(build)  # the build outlived its scheduler ...
    assert scheduler.scheduled_run(tmp_path, command=GOOD) == (scheduler.EXIT_BUSY, None)  # ... and holds the lock
    assert f"`kill {build}`" in capsys.readouterr().err  # the refusal names the process and how to stop it
    assert wait_for((folder / "build.stopping").exists, what="the build being told to stop")  # it died with its parent
    wait_for(lambda: not alive(build), timeout=STOPPING + 10, what="the build exiting")

    code, latest = scheduler.scheduled_run(tmp_path, command=GOOD)
    assert code == 0 and latest != folder
    assert status(folder)["status"] == "abandoned" and status(folder)["marked_by"] == latest.name
    assert (tmp_path / "reports").resolve() == (latest / "reports").resolve()


def test_sigterm_to_the_scheduler_stops_the_build_and_records_it(tmp_path, processes):
    proc, folder, build = start_scheduler(tmp_path, SLOW, processes)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=STOPPING + 20)

    assert proc.returncode == scheduler.EXIT_FAILED
    assert not alive(build) and (folder / "build.stopping").read_text() == "SIGTERM"
    record = status(folder)
    assert record["status"] == "terminated" and record["signal"] == "SIGTERM" and record["exit_code"] == 1
    assert "stopped by SIGTERM" in err and not (tmp_path / "reports").exists()
    with scheduler.run_lock(tmp_path / "runs"):  # the lock is free again
        pass


def test_a_run_folder_without_status_is_marked_abandoned_by_the_next_run(tmp_path, capsys):
    orphan = tmp_path / "runs" / "20260101T053000Z"
    orphan.mkdir(parents=True)
    (orphan / "run.log").write_text("$ python -m helpers.app.pipeline build\nExecuting: eda\n")
    code, folder = scheduler.scheduled_run(tmp_path, command=GOOD)
    assert code == 0
    record = status(orphan)
    assert record["status"] == "abandoned" and "Executing: eda" in record["failure"]
    assert f"{orphan} had no status.json" in capsys.readouterr().err
    assert status(folder)["status"] == "ok"


def test_a_build_that_refuses_its_input_or_finds_the_warehouse_busy_passes_its_status_through(tmp_path):
    for build_status in (2, 3):
        code, folder = scheduler.scheduled_run(tmp_path, command=[sys.executable, "-c", f"exit({build_status})"])
        assert code == build_status and status(folder)["status"] == "failed"
    assert scheduler.scheduled_run(tmp_path, command=[sys.executable, "-c", "exit(7)"])[0] == scheduler.EXIT_FAILED

