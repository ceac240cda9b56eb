"""One operating cycle: ``make operate`` (``python -m helpers.app.cycle``).

fetch (when ``fetch_url`` is set) -> intake of the inbox -> refit of the production model on
all data now available -> forecast, logged -> monitoring -> alerts -> the retraining rule ->
the monitoring pages. The production model is the registry's champion
(:func:`production_artifact`), so a challenger the rule promotes is what the next cycle refits.
The steps after the fetch are a Ploomber pipeline, ``pipeline.operate.yaml``, built whole
each cycle (the tasks are in :mod:`helpers.app.cycle_tasks`), so cron, the orchestrator
export and the report site treat it like the main pipeline.

A cycle with nothing to do (no file in the inbox, no served forecasts to fold, and the last
cycle did not fail) builds nothing: it
records a ``skipped`` row in the warehouse table ``cycles`` and exits 0. A cycle holds the
lock of ``make scheduled-run`` (``runs/.lock``) from start to end, so the two never write
at the same time; a cycle that finds it held exits 3 at once.

The monitoring pages are published as their own small site beside ``reports``
(``monitoring/``, swapped atomically like the reports): ``monitoring/index.html`` links the
monitoring page and one data-quality page per file taken in.

Exit status: 0 ran or skipped, 1 a step failed, 2 refused input (a setting), 3 busy or the
warehouse was unavailable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.app.pipeline import BuildFailed, exit_code, failure_summary, load_dag
from helpers.core.collector import frozen_survivors
from helpers.core.locks import Busy, run_lock
from helpers.core.paths import project_root
from helpers.core.provenance import RUN_TIME_FORMAT, utc_now
from helpers.core.settings import ConfigError, Settings, load_settings
from helpers.lifecycle.champion import StoreUnavailable, champion_artifact
from helpers.publish.site import monitoring_site
from helpers.warehouse import Warehouse, WarehouseError

EXIT_FAILED, EXIT_REFUSED, EXIT_BUSY = 1, 2, 3
#: The task a cycle builds, with its upstream (intake, forecast, alerts), when it does not render the
#: monitoring pages (``render=False``).
UNRENDERED_TARGET = "retrain"


def monitoring_link(settings: Settings) -> Path:
    """Where the monitoring site is published: ``monitoring`` beside ``reports``."""
    return monitoring_site(settings.reports)


def make_cycle_dag(settings: Settings, cycle_id: str, now: datetime, artifact: Path | None = None) -> Any:
    """``pipeline.operate.yaml`` as a Ploomber DAG, its placeholders filled from ``settings``;
    ``artifact`` is the production artifact (default: :func:`production_artifact`)."""
    artifact = artifact or production_artifact(settings)
    env = {**settings.as_env(), "cycle_id": cycle_id, "now": now.isoformat(timespec="seconds"),
           "monitoring": str(monitoring_link(settings)), "artifact": str(artifact)}
    env["run_parameters"] = json.dumps(env, sort_keys=True)
    return load_dag("pipeline.operate.yaml", env)


def production_artifact(settings: Settings) -> Path:
    """The artifact whose models a cycle refits (keeping its models and settings) and whose
    cross-validated error the monitoring judges against: the registry's champion, downloaded into
    ``<products>/operate/champion/``; when the registry has none, the one the pipeline's model
    comparison made (``<products>/model/forecast_artifact.json``).

    Raises :class:`ConfigError` when the champion's artifact is unusable, and
    :class:`helpers.lifecycle.champion.StoreUnavailable` when the registry cannot be read."""
    from helpers.lifecycle.registry import RegistryError

    try:
        champion = champion_artifact(settings, settings.products / "operate" / "champion")
    except RegistryError as exc:
        raise ConfigError(f"a cycle refits the registry's champion, and it cannot be used: {exc}") from None
    return champion or settings.products / "model" / "forecast_artifact.json"


def record_cycle(settings: Settings, row: dict[str, Any]) -> None:
    with Warehouse.from_settings(settings) as warehouse:
        warehouse.execute("insert_cycle", [row[k] for k in ("cycle_id", "started_at", "finished_at", "status",
                                                              "files_new", "rows_loaded", "forecasts_logged",
                                                              "note")])


def has_new_data(settings: Settings) -> tuple[bool, str]:
    """Whether there is work: a file in the inbox (new, or taken in by a cycle that stopped before
    archiving it), served forecasts to fold, or a last cycle that failed (its refit, forecasts
    and alerts are owed)."""
    from helpers.operate import intake

    files = intake.inbox_files(settings.inbox_dir, settings.intake_settle_seconds)
    logs = sorted(settings.forecast_log_dir.glob("*.jsonl")) if settings.forecast_log_dir.is_dir() else []
    with Warehouse.from_settings(settings) as warehouse:
        cycles = warehouse.query("select_cycles")
    ran = cycles[cycles["status"] != "skipped"]
    failed = not ran.empty and ran["status"].iloc[-1] == "failed"
    if files or logs or failed:
        return True, (f"{len(files)} file(s) in the inbox, {len(logs)} forecast log file(s) to fold"
                      + (f"; the last cycle ({ran['cycle_id'].iloc[-1]}) failed" if failed else ""))
    return False, f"no file in {settings.inbox_dir} and no served forecasts to fold"


def fetch_step(settings: Settings, now: datetime) -> str:
    """Fetch new data into the inbox when ``fetch_url`` is set; one line saying what happened ('' when off)."""
    if not settings.fetch_url:
        return ""
    from helpers.operate.fetch import fetch_to_inbox

    return fetch_to_inbox(settings, now=now).message


def run_cycle(settings: Settings, now: datetime | None = None, render: bool = True,
              cycle_id: str | None = None) -> dict[str, Any]:
    """One cycle without the lock (the caller holds it); returns its ``cycles`` row.

    ``now`` is the cycle's time (a replay passes the simulated one); ``render=False`` builds
    everything but the monitoring notebook and pages.
    """
    now = now or utc_now()
    # the time and random hex digits: two cycles in one second (cron, then a person) get two ids
    cycle_id = cycle_id or f"{now:{RUN_TIME_FORMAT}}Z-{uuid.uuid4().hex[:6]}"
    started = utc_now()
    fetched = fetch_step(settings, now)
    row = {"cycle_id": cycle_id, "started_at": pd.Timestamp(started), "status": "ok", "files_new": 0,
           "rows_loaded": 0, "forecasts_logged": 0, "note": fetched}
    new, why = has_new_data(settings)
    if not new:
        row.update(status="skipped", finished_at=pd.Timestamp(utc_now()), note="; ".join(filter(None, [fetched, why])))
        record_cycle(settings, row)
        return row
    from ploomber.exceptions import DAGBuildError

    from helpers.forecast.artifact import ArtifactError, load_artifact

    artifact = production_artifact(settings)
    try:
        load_artifact(artifact)
    except ArtifactError as exc:
        raise ConfigError(f"a cycle refits the model the comparison selected, and there is none to refit: {exc} "
                          "The new files stay in the inbox until then.") from exc
    try:
        if render:
            make_cycle_dag(settings, cycle_id, now, artifact).build(force=True, show_progress=False)
        else:  # one build, forced as the whole one is: Ploomber then skips checking each task's code (~0.3 s a task)
            make_cycle_dag(settings, cycle_id, now, artifact).build_partially(UNRENDERED_TARGET, force=True,
                                                                               show_progress=False)
    except DAGBuildError as exc:
        row.update(status="failed", finished_at=pd.Timestamp(utc_now()), note=failure_summary(exc)[:2000])
        record_cycle(settings, row)
        raise BuildFailed(f"cycle {cycle_id} failed:\n{failure_summary(exc)}", exit_code(str(exc))) from exc
    products = settings.products / "operate"
    intake_record = json.loads((products / "intake.json").read_text())
    forecast_record = json.loads((products / "forecast.json").read_text())
    row.update(finished_at=pd.Timestamp(utc_now()), files_new=len(intake_record["taken_in"]),
               rows_loaded=intake_record["rows_loaded"], forecasts_logged=forecast_record["logged"])
    record_cycle(settings, row)
    return row


def operate(settings: Settings, runs: Path, render: bool = True) -> int:
    """One cycle under the lock ``runs/.lock``, said in one line; returns the exit status."""
    try:
        with run_lock(runs), frozen_survivors():  # helpers.core.collector
            row = run_cycle(settings, render=render)
    except Busy as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except BuildFailed as exc:
        print(f"{exc}\nThe inbox files not taken in stay in {settings.inbox_dir}; the next cycle tries them again.",
              file=sys.stderr)
        return exc.code
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except WarehouseError as exc:  # WarehouseBusy included
        print(f"warehouse unavailable: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except StoreUnavailable as exc:
        print(f"model registry unavailable: {exc}; the new files stay in {settings.inbox_dir}", file=sys.stderr)
        return EXIT_BUSY
    if row["status"] == "skipped":
        print(f"cycle {row['cycle_id']} skipped: {row['note']}")
    else:
        print(f"cycle {row['cycle_id']} ok: {row['files_new']} file(s) taken in, {row['rows_loaded']} rows loaded, "
              f"{row['forecasts_logged']} forecasts logged; monitoring in {monitoring_link(settings)}/index.html")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.app.cycle", description="One operating cycle.",
                                     epilog="exit status: 0 ran or skipped, 1 a step failed, 2 refused input, "
                                            "3 busy or the warehouse was unavailable")
    parser.add_argument("--profile", help="settings profile, e.g. 'test'")
    parser.add_argument("--no-render", action="store_true", help="leave out the monitoring notebook and pages")
    args = parser.parse_args(argv)
    if args.profile:
        os.environ["HELPERS_PROFILE"] = args.profile
    os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # its INFO lines (making tables, validating): noise here
    try:
        settings = load_settings(args.profile)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return operate(settings, project_root() / "runs", render=not args.no_render)


if __name__ == "__main__":
    sys.exit(main())
