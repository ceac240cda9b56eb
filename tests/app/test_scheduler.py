"""Scheduled runs: one at a time, each in its own folder, published only when good."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from helpers.app import scheduler

# A stand-in for the pipeline build: writes a report page into the run's folder, or fails.
GOOD = [sys.executable, "-c", "import os, pathlib; p = pathlib.Path(os.environ['HELPERS_REPORTS']); "
        "p.mkdir(parents=True); (p / 'index.html').write_text('run ' + os.environ['HELPERS_PRODUCTS'])"]
BAD = [sys.executable, "-c", "import sys; print('helpers.data.quality.DataQualityError: x.csv: missing column'); "
       "sys.exit(1)"]


def test_good_run_is_published_and_a_failed_one_keeps_it(tmp_path):
    code, first = scheduler.scheduled_run(tmp_path, command=GOOD)
    assert code == 0
    assert (tmp_path / "reports").is_symlink() and (tmp_path / "runs" / "latest").resolve() == first
    assert (tmp_path / "reports" / "index.html").read_text() == f"run {first / 'products'}"
    assert json.loads((first / "status.json").read_text())["status"] == "ok"
    assert (first / "run.log").read_text().startswith("$ ")

    code, failed = scheduler.scheduled_run(tmp_path, command=BAD)
    assert code == scheduler.EXIT_FAILED and failed != first
    assert (tmp_path / "reports").resolve() == first / "reports"  # still the good run
    status = json.loads((failed / "status.json").read_text())
    assert status["status"] == "failed" and status["exit_code"] == 1
    assert "DataQualityError: x.csv: missing column" in status["failure"]


def test_a_run_is_published_where_the_reports_setting_says_with_runs_on_another_volume(tmp_path):
    """The container's layout: the project read-only, ``runs`` a link into the volume, reports on it."""
    project, volume = tmp_path / "app", tmp_path / "data"
    project.mkdir()
    (volume / "runs").mkdir(parents=True)
    (project / "runs").symlink_to(volume / "runs")
    project.chmod(0o555)  # nothing may be written beside the project's files
    try:
        code, folder = scheduler.scheduled_run(project, command=GOOD, reports=volume / "reports")
    finally:
        project.chmod(0o755)
    assert code == 0 and folder.parent == volume / "runs"
    assert os.readlink(volume / "reports") == f"runs/{folder.name}/reports"  # relative, inside the volume
    assert (volume / "reports" / "index.html").read_text() == f"run {folder / 'products'}"
    assert not (project / "reports").exists()


def test_an_unknown_profile_is_refused_before_anything_runs(capsys):
    assert scheduler.main(["--profile", "nosuch"]) == scheduler.EXIT_REFUSED
    err = capsys.readouterr().err
    assert err.startswith("refused: unknown profile 'nosuch'") and "Traceback" not in err


def test_a_manual_reports_folder_is_kept_aside(tmp_path):
    manual = tmp_path / "reports"
    manual.mkdir()
    (manual / "index.html").write_text("manual")
    assert scheduler.scheduled_run(tmp_path, command=GOOD)[0] == 0
    kept = list(tmp_path.glob("reports.manual-*"))
    assert len(kept) == 1 and (kept[0] / "index.html").read_text() == "manual"


def test_a_held_lock_makes_the_run_exit_busy_without_touching_anything(tmp_path, capsys):
    with scheduler.run_lock(tmp_path / "runs"):
        assert scheduler.scheduled_run(tmp_path, command=GOOD) == (scheduler.EXIT_BUSY, None)
    assert "another scheduled run holds" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [".lock"]


def test_two_overlapping_processes_one_runs_one_is_turned_away(tmp_path):
    slow = [sys.executable, "-c", "import time; time.sleep(3); " + GOOD[2]]
    code = ("import sys; from pathlib import Path; from helpers.app import scheduler; "
            f"sys.exit(scheduler.scheduled_run(Path({str(tmp_path)!r}), command={slow!r})[0])")
    first = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(1.5)  # the first holds the lock and is still building
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert second.returncode == scheduler.EXIT_BUSY, second.stderr
    assert "pid" in second.stderr  # names the holder
    assert first.wait(timeout=60) == 0
    folders = [p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(folders) == 1 and (tmp_path / "reports" / "index.html").exists()


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; from pathlib import Path; "
                               "from helpers.app import scheduler\n"
                               f"with scheduler.run_lock(Path({str(tmp_path / 'runs')!r})): time.sleep(60)"])
    for _ in range(100):
        if (tmp_path / "runs" / ".lock").exists() and (tmp_path / "runs" / ".lock").read_text():
            break
        time.sleep(0.1)
    with pytest.raises(scheduler.Busy):
        with scheduler.run_lock(tmp_path / "runs"):
            pass
    holder.kill()
    holder.wait()
    with scheduler.run_lock(tmp_path / "runs"):
        pass


def test_prune_keeps_the_newest_and_the_published_run(tmp_path):
    runs = tmp_path / "runs"
    names = [f"2026010{i}T000000Z" for i in range(1, 6)]
    for name in names:
        (runs / name).mkdir(parents=True)
    scheduler.point(runs / "latest", runs / names[0])
    deleted = scheduler.prune(runs, keep=2)
    assert [p.name for p in deleted] == names[1:3]
    assert sorted(p.name for p in runs.iterdir()) == [names[0], *names[3:], "latest"]


def test_main_passes_the_profile_and_returns_the_exit_code(monkeypatch, tmp_path):
    seen = {}

    def fake(profile=None, keep=0, reports=None):
        seen.update(profile=profile, keep=keep, reports=reports)
        return 3, None

    monkeypatch.setattr(scheduler, "scheduled_run", fake)
    monkeypatch.setenv("HELPERS_REPORTS", str(tmp_path / "site"))  # published where the setting says
    assert scheduler.main(["--profile", "test", "--keep", "5"]) == 3
    assert seen == {"profile": "test", "keep": 5, "reports": tmp_path / "site"}
