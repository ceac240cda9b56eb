"""Exit codes a scheduler can read: 0 ok, 1 failed, 2 refused input, 3 busy / warehouse unavailable."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.app import pipeline, scheduler
from tests.reliability.conftest import REPO
from tests.support import DQ


def crontab_commands(root: Path, program: str) -> list[str]:
    """The commands of the README's crontab entries that run ``program``, for a project at ``root``."""
    readme = (REPO / "README.md").read_text()
    lines = [line for line in re.findall(r"^(?:\S+\s+){5}cd /srv/demand-analytics .*$", readme, flags=re.MULTILINE)
             if f"-m {program} " in line]
    assert lines, f"no crontab entry for {program} in the README"
    return [line.split(None, 5)[5].replace("/srv/demand-analytics", str(root)).replace(".venv/bin/python",
                                                                                       sys.executable)
            for line in lines]


@pytest.mark.parametrize("entry", [0, 1])
def test_the_readme_crontab_entries_are_quiet_when_busy_and_speak_up_when_a_run_fails(project, entry):
    """The daily scheduled run (Scheduled runs) and the weekly one (Operating the forecast)."""
    commands = crontab_commands(project.root, "helpers.app.scheduler")
    assert len(commands) == 2
    command = commands[entry]
    (project.root / "runs").mkdir(exist_ok=True)
    for old in (project.root / "runs").glob("*.log"):
        old.unlink()
    with scheduler.run_lock(project.root / "runs"):  # another run is going on
        busy = subprocess.run(["sh", "-c", command], env=project.env, capture_output=True, text=True, timeout=60)
    assert (busy.returncode, busy.stdout, busy.stderr) == (3, "", "")
    assert "skipped: another scheduled run holds" in (project.root / "runs" / "cron.log").read_text()

    refused = subprocess.run(["sh", "-c", command], env={**project.env, "HELPERS_DAILY_FOLDS": "1"},
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "exit 2" in refused.stdout and "runs/cron.log" in refused.stdout  # cron mails this line
    assert "daily_folds must be at least 2" in (project.root / "runs" / "cron.log").read_text()


def test_the_readme_cycle_entry_is_quiet_when_busy_and_speaks_up_when_refused(project):
    (command,) = crontab_commands(project.root, "helpers.app.cycle")
    with scheduler.run_lock(project.root / "runs"):  # a scheduled run is going on
        busy = subprocess.run(["sh", "-c", command], env=project.env, capture_output=True, text=True, timeout=60)
    assert (busy.returncode, busy.stdout, busy.stderr) == (3, "", "")
    assert "skipped: another scheduled run holds" in (project.root / "runs" / "cycle.log").read_text()
    refused = subprocess.run(["sh", "-c", command], env={**project.env, "HELPERS_MONITOR_PSI_RED": "-1"},
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "cycle exit 2" in refused.stdout and "runs/cycle.log" in refused.stdout
    assert "monitor_psi_red" in (project.root / "runs" / "cycle.log").read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_shows_the_programs_status_but_exits_2_itself(project):
    """GNU make exits 0 or 2 whatever its recipe returned; it names the recipe's status in its error line."""
    venv = Path(sys.executable).parents[1]
    if not (venv / "pyvenv.cfg").exists():
        pytest.skip("the tests do not run from a virtual environment")
    with scheduler.run_lock(project.root / "runs"):
        made = subprocess.run(["make", "-C", str(REPO), f"VENV={venv}", "-o", str(venv / ".installed"),
                               "scheduled-run"], env=project.env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 2
    assert "Error 3" in made.stderr and "skipped: another scheduled run holds" in made.stderr


def test_a_refused_source_file_makes_the_build_exit_2(project, monkeypatch, capsys):
    monkeypatch.setenv("HELPERS_SOURCE_FILE", str(DQ / "missing_column.csv"))
    assert pipeline.main(["build"]) == pipeline.EXIT_REFUSED
    assert "missing required column 'demand'" in capsys.readouterr().err


def test_build_failures_map_to_exit_codes():
    assert pipeline.exit_code("helpers.data.quality.DataQualityError: f.csv: missing column") == 2
    assert pipeline.exit_code("helpers.warehouse.client.WarehouseError: could not set lock") == 3
    assert pipeline.exit_code("helpers.warehouse.client.WarehouseBusy: the warehouse is in use by PID 7") == 3
    assert pipeline.exit_code("RuntimeError: a bug in the analysis") == 1
