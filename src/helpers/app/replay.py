"""Replay a series as if it arrived over time: ``make replay`` (``python -m helpers.app.replay``).

From a fresh folder (``replay/`` by default: its own warehouse, inbox, archive, products and
monitoring site), the replay

1. takes the rows up to ``--train-until`` (the whole day) as the history: ingests them, runs
   the model comparison on the daily series, fits the selected model and registers it as the
   first champion in the replay's own MLflow store (the pipeline's own functions,
   :mod:`helpers.forecast.comparison`, :func:`helpers.app.tasks.fit_final_task` and
   :func:`helpers.lifecycle.registry.register_comparison`);
2. cuts the rest into files of ``--step`` (a pandas offset, ``7D`` by default) with
   :func:`helpers.operate.intake.split_rows`;
3. drops them into the inbox one at a time and runs one operating cycle per file
   (:func:`helpers.app.cycle.run_cycle`), at the time the file's last row was measured, so
   the forecast log, the monitoring and the alerts unfold as they would have.

The monitoring notebook and pages are made by the last cycle only (``--render-every`` makes
more): the signals, the alerts and the retraining rule of every cycle run all the same. With
weekly files and ``retrain_every_days`` 7, each cycle trains a challenger and decides.

The column settings (``HELPERS_TIMESTAMP_COL``, ``HELPERS_TARGET_COL``, ...) apply as for
``make run``. Exit status: 0 done, 1 a cycle failed, 2 refused input.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.app.cycle import run_cycle
from helpers.app.pipeline import BuildFailed
from helpers.app.tasks import fit_final_task
from helpers.core.collector import frozen_survivors
from helpers.core.files import write_atomic
from helpers.core.paths import resolve
from helpers.core.settings import ConfigError, SERIES_BOUND, Settings, load_settings
from helpers.data.ingest import ingest
from helpers.data.quality import DataQualityError
from helpers.data.series import load_series
from helpers.forecast import comparison
from helpers.lifecycle.registry import Registry, register_comparison
from helpers.lifecycle.tracking import REGISTRY_ENV, TRACKING_ENV
from helpers.operate.intake import file_stem, split_rows, timed_rows
from helpers.warehouse import Warehouse, WarehouseError

DEFAULT_TRAIN_UNTIL = "2014-09-30"
DEFAULT_STEP = "7D"


@dataclass
class ReplayResult:
    folder: Path
    files: list[Path]
    cycles: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def replay_environment(out: Path, source: Path, base: Settings, live: bool = False) -> dict[str, str]:
    """The ``HELPERS_*`` variables that point every setting that writes at ``out``.

    The series' calendar settings are passed on explicitly when the file is the configured
    one and they are not set already (the history file is a new path, so they would
    otherwise not be applied to it). Unless ``live``, the fetch and the alert channels are
    switched off: a replay must not pull today's data into its past, nor page anyone about it.
    Its models always go to its own MLflow store (``out/mlflow``), never to a team's server:
    :func:`replay` unsets ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI`` while it runs.
    """
    env: dict[str, Any] = {
        "HELPERS_WAREHOUSE_PATH": out / "warehouse.duckdb", "HELPERS_PRODUCTS": out / "products",
        "HELPERS_MLFLOW_DIR": out / "mlflow",
        "HELPERS_REPORTS": out / "reports", "HELPERS_INBOX_DIR": out / "inbox", "HELPERS_ARCHIVE_DIR": out / "archive",
        "HELPERS_FORECAST_LOG_DIR": out / "forecast_log", "HELPERS_SOURCE_FILE": out / "history.csv"}
    if resolve(str(source)) == base.source_file:
        for key in SERIES_BOUND:
            if f"HELPERS_{key.upper()}" not in os.environ:
                env[f"HELPERS_{key.upper()}"] = getattr(base, key) or ""
    if not live:
        env.update({"HELPERS_FETCH_URL": "", "HELPERS_ALERT_EMAIL_TO": "", "HELPERS_ALERT_EMAIL_FROM": "",
                    "HELPERS_SMTP_HOST": "", base.alert_webhook_url_env: ""})
    return {k: str(v) for k, v in env.items()}


def train(settings: Settings) -> Path:
    """Ingest the history, compare the daily models, fit the selected one and register it (the
    first version is champion); returns the artifact."""
    ingest(settings)
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        frame = comparison.prepare_frame(load_series(warehouse, settings.series_id, "daily",
                                                     max_fill_steps=settings.max_fill_steps))
    result = comparison.run_comparison(frame, comparison.ComparisonConfig.from_settings(settings, "daily"))
    selection = comparison.write_selection(result, settings.products / "model" / "selection.json")
    artifact = settings.products / "model" / "forecast_artifact.json"
    fit_final_task(artifact, {"model_comparison": {"selection": selection}}, settings.series_id,
                   settings.warehouse_backend, str(settings.warehouse_path), str(settings.max_fill_steps),
                   settings.profile, str(settings.source_file))
    register_comparison(Registry.from_settings(settings), selection, artifact)
    return artifact


def replay(source: Path, out: Path, train_until: str = DEFAULT_TRAIN_UNTIL, step: str = DEFAULT_STEP,
           render_every: int = 0, say=print, live: bool = False) -> ReplayResult:
    """The replay described in the module docstring; ``os.environ`` is pointed at ``out`` for its
    duration. ``live`` keeps the configured fetch and alert channels (:func:`replay_environment`)."""
    base = load_settings()
    until = pd.Timestamp(train_until) + pd.Timedelta("1D")  # the whole day
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    frame, times = timed_rows(source, base.timestamp_col, base.encoding)
    history = frame[(times < until).to_numpy()]
    if history.empty or len(history) == len(frame):
        raise ValueError(f"train_until {train_until} leaves no {'history' if history.empty else 'rows to replay'}: "
                         f"the file spans {times.min()} .. {times.max()} (set REPLAY_TRAIN_UNTIL)")
    write_atomic(out / "history.csv", history.to_csv(index=False))
    previous = dict(os.environ)
    os.environ.update(replay_environment(out, source, base, live))
    for name in (TRACKING_ENV, REGISTRY_ENV):  # the replay's own store (replay_environment)
        os.environ.pop(name, None)
    try:
        settings = load_settings()
        started = time.perf_counter()
        train(settings)
        parts = split_rows(frame, times, out / "pending", file_stem(source.name), every=step,
                           after=str(until - pd.Timedelta("1ns")))
        result = ReplayResult(out, [path for path, _ in parts])
        result.seconds["train"] = time.perf_counter() - started
        say(f"replay: trained on {len(history)} rows up to {train_until}; {len(result.files)} files of {step} to replay")
        settings.inbox_dir.mkdir(parents=True, exist_ok=True)
        for k, (path, last) in enumerate(parts, start=1):
            arrived = last.ceil("1D")
            shutil.move(path, settings.inbox_dir / path.name)
            render = k == len(result.files) or (render_every > 0 and k % render_every == 0)
            started = time.perf_counter()
            row = run_cycle(settings, now=arrived.to_pydatetime(), render=render)
            row["seconds"] = time.perf_counter() - started
            result.cycles.append(row)
            say(f"cycle {k}/{len(result.files)} ({path.name}, {arrived.date()}): {row['status']}, "
                f"{row['rows_loaded']} rows, {row['seconds']:.1f} s")
        shutil.rmtree(out / "pending", ignore_errors=True)
        return result
    finally:
        os.environ.clear()
        os.environ.update(previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.app.replay", description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, help="series file (default: source_file, or $REPLAY_FILE)")
    parser.add_argument("--train-until", default=os.environ.get("REPLAY_TRAIN_UNTIL") or DEFAULT_TRAIN_UNTIL,
                        help=f"last day of the history (default {DEFAULT_TRAIN_UNTIL}, or $REPLAY_TRAIN_UNTIL)")
    parser.add_argument("--step", default=os.environ.get("REPLAY_STEP") or DEFAULT_STEP,
                        help=f"one inbox file per this pandas offset (default {DEFAULT_STEP}, or $REPLAY_STEP)")
    parser.add_argument("--out", type=Path, default=Path("replay"), help="folder of the replay (made afresh)")
    parser.add_argument("--render-every", type=int, default=0, help="also render the pages every N cycles")
    parser.add_argument("--live", action="store_true", help="keep the configured fetch and alert channels "
                        "(off by default: a replay sends no alert)")
    args = parser.parse_args(argv)
    os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # its INFO lines (making tables, validating): noise here
    try:
        source = args.file or (Path(os.environ["REPLAY_FILE"]) if os.environ.get("REPLAY_FILE")
                               else load_settings().source_file)
        started = time.perf_counter()
        with frozen_survivors():  # helpers.core.collector
            result = replay(source, resolve(str(args.out)), args.train_until, args.step, args.render_every,
                            live=args.live)
    except (ConfigError, DataQualityError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (WarehouseError, OSError) as exc:
        print(f"replay stopped: {exc}", file=sys.stderr)
        return 3
    except BuildFailed as exc:
        print(f"replay stopped: {exc}", file=sys.stderr)
        return exc.code
    settings_out = resolve(str(args.out))
    print(f"replay done in {time.perf_counter() - started:.0f} s: {len(result.cycles)} cycles; monitoring in "
          f"{settings_out / 'monitoring' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
