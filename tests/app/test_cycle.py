"""One operating cycle: skipped when nothing is new, turned away while a scheduled run holds the lock."""

from __future__ import annotations

import pytest

from helpers.app import cycle
from helpers.app.scheduler import run_lock
from helpers.warehouse import Warehouse
from tests.support import cycle_settings


@pytest.fixture
def settings(tmp_path, clean_env):
    return cycle_settings(tmp_path)


def test_a_cycle_with_nothing_new_is_recorded_as_skipped_and_exits_0(settings, tmp_path, capsys):
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / ".fetched-partial.csv").write_text("timestamp,demand\n")  # being written: not new
    assert cycle.operate(settings, tmp_path / "runs") == 0
    assert "skipped: no file in" in capsys.readouterr().out
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        (row,) = warehouse.query("select_cycles").to_dict("records")
    assert row["status"] == "skipped" and row["finished_at"] >= row["started_at"]
    assert not (tmp_path / "products").exists()  # nothing was built
    assert cycle.operate(settings, tmp_path / "runs") == 0  # at once again, very likely in the same second
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        ids = warehouse.query("select_cycles")["cycle_id"].tolist()
    assert len(ids) == len(set(ids)) == 2


def test_a_cycle_is_turned_away_while_the_lock_is_held(settings, tmp_path, capsys):
    with run_lock(tmp_path / "runs"):
        assert cycle.operate(settings, tmp_path / "runs") == cycle.EXIT_BUSY
    assert "another scheduled run holds" in capsys.readouterr().err


def test_a_bad_setting_exits_2(clean_env, monkeypatch, capsys):
    monkeypatch.setenv("HELPERS_MONITOR_PSI_RED", "-1")
    assert cycle.main([]) == cycle.EXIT_REFUSED
    assert "monitor_psi_red" in capsys.readouterr().err


def test_a_cycle_without_a_model_to_refit_refuses_and_leaves_the_inbox(settings, tmp_path, capsys):
    from tests.support import DQ

    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "new.csv").write_bytes((DQ / "clean.csv").read_bytes())
    assert cycle.operate(settings, tmp_path / "runs") == cycle.EXIT_REFUSED
    err = capsys.readouterr().err
    assert "there is none to refit" in err and "`make run`" in err
    assert (tmp_path / "inbox" / "new.csv").exists()


def test_a_cycle_after_a_failed_one_is_not_skipped(settings, tmp_path, capsys):
    import pandas as pd

    with Warehouse.from_settings(settings) as warehouse:
        warehouse.execute("insert_cycle", ["c0", pd.Timestamp("2026-01-01"), pd.Timestamp("2026-01-01"), "failed", 1,
                                           10, 0, "the refit failed"])
    # nothing in the inbox, but the failed cycle's work is owed: it is not skipped (and refuses: no model here)
    assert cycle.operate(settings, tmp_path / "runs") == cycle.EXIT_REFUSED
    assert "there is none to refit" in capsys.readouterr().err


def test_without_a_registry_a_cycle_refits_the_pipeline_s_artifact(settings):
    assert cycle.production_artifact(settings) == settings.products / "model" / "forecast_artifact.json"
    assert not settings.mlflow_dir.exists()  # reading the registry made nothing


# -- the monitoring notebook, run in the cycle's process -----------------------------------------------------
@pytest.fixture
def monitoring_task(settings, tmp_path):
    """The cycle's ``monitoring`` task on an empty warehouse (no forecast, no file, no artifact, no
    retraining decision: every signal grey, every figure empty), with the ``forecast`` and
    ``retrain`` records it reads written as a cycle would."""
    from datetime import datetime

    with Warehouse.from_settings(settings):
        pass
    record = settings.products / "operate" / "forecast.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"model": "m", "model_version": "v1", "fitted_until": "2015-01-01", "logged": 0, "folded": 0}')
    (settings.products / "operate" / "retrain.json").write_text('{"due": false}')
    from ploomber.constants import TaskStatus

    dag = cycle.make_cycle_dag(settings, "c1", datetime(2015, 1, 2))
    dag.render(force=True, show_progress=False)
    for done in ("forecast", "retrain"):
        dag[done].exec_status = TaskStatus.Skipped  # its record is there
    return dag["monitoring"]


def test_the_monitoring_notebook_runs_in_process_and_its_page_draws_every_figure(monitoring_task, settings, tmp_path):
    import nbformat

    from helpers.app.cycle_tasks import render_task

    assert monitoring_task.executor == "ploomber-engine"  # no kernel: pipeline.operate.yaml
    monitoring_task.build(force=True)
    executed = nbformat.read(settings.products / "operate" / "monitoring.ipynb", as_version=4)
    outputs = [out for cell in executed.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error" or out.get("name") == "stderr"]
    render_task(tmp_path / "site.json", {"monitoring": {"nb": str(settings.products / "operate" / "monitoring.ipynb")}},
                monitoring_site=str(tmp_path / "monitoring"), reports=str(tmp_path / "reports"),
                archive_dir=str(tmp_path / "archive"), run_parameters="{}")
    page = (tmp_path / "monitoring" / "monitoring.html").read_text()
    assert page.count("* plotly.js v") == 1  # the library once, embedded (no network needed)
    assert page.count('class="plotly-graph-div"') == 13 and "is not able to be represented" not in page
    assert "Forecast error over time" in page and "Every file taken in" in page
    assert "No retraining decision yet." in page
    assert '<a href="monitoring.html" class="current" aria-current="page">' in page  # the site's navigation
    assert "Analysis reports of the last full run (not published yet" in page


def test_an_error_or_a_warning_in_the_monitoring_notebook_is_not_lost(monitoring_task, settings, monkeypatch):
    import sys
    import warnings

    import nbformat
    from ploomber.exceptions import TaskBuildError

    from helpers.operate import monitoring

    def warns(signals):
        warnings.warn("a warning from the monitoring notebook", UserWarning)
        return "summary"

    # A warning is an error under the test suite's filters, in this process as anywhere in it.
    monkeypatch.setattr(monitoring, "summary", warns)
    with pytest.raises(TaskBuildError):
        monitoring_task.build(force=True)
    # In a cycle (the default filters, and the executor leaves warnings alone) it is kept in the
    # notebook as its stderr, as a kernel kept it.
    assert "catch_warnings=False" in repr(monitoring_task.dag.executor)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        # to stderr as in a plain process (pytest records warnings instead)
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: sys.stderr.write(
            warnings.formatwarning(message, category, filename, lineno, line))
        monitoring_task.build(force=True)
    executed = nbformat.read(settings.products / "operate" / "monitoring.ipynb", as_version=4)
    stderr = [out.text for cell in executed.cells if cell.cell_type == "code" for out in cell.outputs
              if out.get("name") == "stderr"]
    assert len(stderr) == 1 and "a warning from the monitoring notebook" in stderr[0]

    def fails(signals):
        raise RuntimeError("a broken monitoring notebook")

    monkeypatch.setattr(monitoring, "summary", fails)
    with pytest.raises(TaskBuildError) as error:
        monitoring_task.build(force=True)
    assert "a broken monitoring notebook" in str(error.value.__cause__) or "a broken monitoring notebook" in str(
        error.getrepr())
