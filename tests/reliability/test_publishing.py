"""Publishing never unpublishes: a failed or stopped build leaves the last good reports and notebooks."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import nbformat
import pytest

from helpers.app import pipeline
from helpers.core.settings import load_settings
from tests.reliability.conftest import wait_for

# Cells that replace the analysis cell; each still uses its parameter (Ploomber warns otherwise).
BUG = 'raise RuntimeError(f"a bug in the analysis of {series_id}")'


def test_a_failed_build_after_a_scheduled_run_leaves_its_reports_published(project, capsys):
    published = project.root / "runs" / "20260101T053000Z" / "reports"
    published.mkdir(parents=True)
    (published / "index.html").write_text("the scheduled run's pages")
    project.reports.symlink_to(os.path.relpath(published, project.root))
    project.write_notebook(BUG)

    assert pipeline.main(["build"]) == 1
    assert project.reports.resolve() == published
    assert (project.reports / "index.html").read_text() == "the scheduled run's pages"
    assert "still shows the last good reports" in capsys.readouterr().err


@pytest.mark.slow
def test_a_failed_task_keeps_the_last_good_notebook_and_says_where_its_output_went(project, capsys):
    assert pipeline.main(["build"]) == 0
    notebook = project.products / "summary.ipynb"
    good, pages = notebook.read_bytes(), project.reports.resolve()
    project.write_notebook(BUG)
    capsys.readouterr()

    assert pipeline.main(["build"]) == 1
    err = capsys.readouterr().err
    assert notebook.read_bytes() == good
    assert project.reports.resolve() == pages
    assert "pipeline failed in task summary" in err and "a bug in the analysis of elecdemand" in err
    partial = Path(re.search(r"unfinished tasks \(summary\) is in (\S+);", err).group(1)) / "summary.ipynb"
    failed_cell = nbformat.read(partial, as_version=4).cells[-1]  # the failed run's notebook, kept aside
    assert failed_cell.source == BUG and failed_cell.outputs[0]["ename"] == "RuntimeError"

    project.write_notebook('print("fixed", series_id)')  # Ploomber did not record the failed run: the task runs again
    table = pipeline.build(load_settings())
    assert set(table.loc[table["ran"], "task"]) == {"summary", "fit_final", "reports"}
    assert "fixed" in notebook.read_text()
    # the good build switched the reports to its own folder in one rename and retired the old pages
    assert project.reports.is_symlink() and project.reports.resolve() != pages and not pages.exists()
    assert "fixed" in (project.reports / "summary.html").read_text()
    assert [p.name for p in project.root.glob("reports.*")] == [project.reports.resolve().name]


def test_sigterm_stops_a_build_and_leaves_the_last_good_notebook(project, capsys):
    pipeline.build(load_settings())
    notebook = project.products / "summary.ipynb"
    good = notebook.read_bytes()
    project.write_notebook('import os, time\nPath(os.environ["HELPERS_ROOT"], "started").write_text(series_id)\n'
                           'time.sleep(60)')

    def stop_when_the_notebook_runs():  # as `kill -TERM` would, while the kernel sleeps
        wait_for((project.root / "started").exists, what="the notebook starting")
        os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_when_the_notebook_runs)
    stopper.start()
    started = time.monotonic()
    try:
        assert pipeline.main(["build"]) == 1
    finally:
        stopper.join()
    assert time.monotonic() - started < 30  # not the notebook's 60 s
    assert "build stopped (SIGTERM)" in capsys.readouterr().err
    assert notebook.read_bytes() == good
