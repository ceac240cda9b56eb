"""Time one operating cycle that renders the monitoring page, and where its time goes.

``make replay`` renders the page only in its last cycle, so ``bench/run.py --only replay`` gives one
such number per 90-second replay. This script times the same cycle several times:

1. a base is made once (or reused with ``--base``): the default data, less its last
   ``--hold-days`` days, replayed as ``make replay`` does (fast profile, history to 2014-09-30,
   weekly files); the held-out days become one new inbox file, ``new-file.csv``;
2. each run copies the base to a fresh folder, drops the new file in its inbox and runs one
   rendered cycle on it:

   - ``in_process``: :func:`helpers.app.cycle.run_cycle` in this process, as the replay runs its
     cycles. One cycle without pages runs first on its own copy, so the refit's imports are warm
     as they are in a replay's last cycle; the first rendered run then pays the notebook's and
     the renderer's first-use costs (``first_rendered_s``), the later ones do not. Each run
     also gives Ploomber's time per task, and the monitoring notebook's time per cell.
   - ``subprocess``: ``python -m helpers.app.cycle`` (``make operate``), interpreter start and
     imports included.
   - ``daily`` (``--daily``): one ``python -m helpers.app.cycle`` per held-out day, in one folder
     (:func:`in_sequence`), as cron runs `make operate` day after day.

Medians (with min and max) are printed and written as JSON (``--output``). The machine's load
average is recorded before and after: compare medians of runs made under similar load.

    PYTHONPATH=src python bench/cycle_pages.py --base /tmp/cycle-base --repeat 5 --subprocess 3 --daily
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")

import pandas as pd  # noqa: E402

from helpers.app import cycle, replay  # noqa: E402
from helpers.core.settings import SERIES_BOUND, load_settings  # noqa: E402


def use_test_profile() -> None:
    """This process's environment for the cycles: the fast profile, and the configured series'
    calendar settings, which go with the copy of its file the base replays (as in `make replay`).
    The script sets it once; bench/run.py sets it for its section only and puts the old one back."""
    os.environ["HELPERS_PROFILE"] = "test"
    for key in SERIES_BOUND:
        os.environ.setdefault(f"HELPERS_{key.upper()}", getattr(load_settings(), key) or "")


def spread(values: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(values), 3), "min_s": round(min(values), 3),
            "max_s": round(max(values), 3), "runs": [round(v, 3) for v in values]}


def make_base(base: Path, hold_days: int) -> None:
    """The default data less its last ``hold_days`` days, replayed into ``base/replay``; the held-out
    rows in ``base/new-file.csv``."""
    settings = load_settings()
    base.mkdir(parents=True, exist_ok=True)
    with gzip.open(settings.source_file, "rt") if settings.source_file.suffix == ".gz" else \
            open(settings.source_file) as handle:
        frame = pd.read_csv(handle, dtype=str)
    times = pd.to_datetime(frame[settings.timestamp_col])
    cut = times.max().normalize() - pd.Timedelta(days=hold_days - 1)
    frame[(times < cut).to_numpy()].to_csv(base / "source.csv", index=False)
    frame[(times >= cut).to_numpy()].to_csv(base / "new-file.csv", index=False)
    started = time.perf_counter()
    replay.replay(base / "source.csv", base / "replay", say=lambda line: None)
    (base / "base.json").write_text(json.dumps({"hold_days": hold_days, "cut": str(cut),
                                                "replay_s": time.perf_counter() - started}))


def fresh_copy(base: Path, folder: Path) -> dict[str, str]:
    """A copy of the base replay with the new file in its inbox; the environment pointing at it."""
    shutil.copytree(base / "replay", folder, symlinks=True)
    inbox = folder / "inbox"
    inbox.mkdir(exist_ok=True)
    shutil.copy(base / "new-file.csv", inbox / "bench-new-file.csv")
    os.utime(inbox / "bench-new-file.csv", (time.time() - 3600, time.time() - 3600))  # settled
    env = replay.replay_environment(folder, base / "source.csv", load_settings())
    return {**env, "HELPERS_PROFILE": "test", "PLOOMBER_STATS_ENABLED": "false"}


def cycle_time(base: Path) -> pd.Timestamp:
    last = pd.read_csv(base / "new-file.csv", usecols=[0]).iloc[:, 0].max()
    return pd.Timestamp(last).ceil("1D")


def cell_seconds(notebook: Path) -> dict[str, float]:
    """Seconds per code cell of an executed notebook (papermill's or ploomber-engine's metadata), if recorded."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    out = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        seconds = cell.metadata.get("papermill", {}).get("duration")
        if seconds is None and "ploomber" in cell.metadata:
            seconds = cell.metadata["ploomber"].get("timestamp_end", 0) - cell.metadata["ploomber"].get(
                "timestamp_start", 0)
        if seconds is not None:
            out[f"{index}: {cell.source.splitlines()[0][:50] if cell.source else ''}"] = round(float(seconds), 3)
    return out


def in_process(base: Path, tmp: Path, repeat: int) -> dict[str, Any]:
    reports: list[dict[str, float]] = []
    original = cycle.make_cycle_dag

    def recording_dag(*args, **kwargs):
        dag = original(*args, **kwargs)
        build = dag.build

        def timed_build(*a, **k):
            report = build(*a, **k)
            table = report.to_pandas()
            reports.append(dict(zip(table["name"], table["Elapsed (s)"].astype(float))))
            return report
        dag.build = timed_build
        return dag

    previous = dict(os.environ)
    cycle.make_cycle_dag = recording_dag
    now = cycle_time(base).to_pydatetime()
    totals, notebooks = [], []
    try:
        os.environ.update(fresh_copy(base, tmp / "warm-up"))  # as a replay's earlier cycles: no pages
        cycle.run_cycle(load_settings(), now=now, render=False)
        reports.clear()
        for k in range(repeat):
            os.environ.clear()
            os.environ.update(previous)
            os.environ.update(fresh_copy(base, tmp / f"run-{k}"))
            settings = load_settings()
            started = time.perf_counter()
            row = cycle.run_cycle(settings, now=now, render=True)
            totals.append(time.perf_counter() - started)
            assert row["status"] == "ok", row
            notebooks.append(cell_seconds(settings.products / "operate" / "monitoring.ipynb"))
            page = settings.reports.with_name("monitoring") / "monitoring.html"
            print(f"in-process rendered cycle {k + 1}/{repeat}: {totals[-1]:.2f} s; tasks {reports[-1]}; page "
                  f"{page.stat().st_size / 1e6:.2f} MB", flush=True)
    finally:
        cycle.make_cycle_dag = original
        os.environ.clear()
        os.environ.update(previous)
    tasks = {name: spread([r[name] for r in reports]) for name in reports[-1]}
    cells = {name: statistics.median(n.get(name, 0.0) for n in notebooks) for name in notebooks[-1]}
    return {"first_rendered_s": round(totals[0], 3), "rendered": spread(totals),
            "rendered_after_first": spread(totals[1:]) if len(totals) > 1 else None,
            "tasks": tasks, "notebook_cells_median_s": cells, "page_bytes": page.stat().st_size}


def in_subprocess(base: Path, tmp: Path, repeat: int) -> dict[str, Any]:
    seconds = []
    for k in range(repeat):
        env = {**os.environ, **fresh_copy(base, tmp / f"sub-{k}")}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "helpers.app.cycle"], env=env, capture_output=True, text=True,
                              timeout=600)
        seconds.append(time.perf_counter() - started)
        assert done.returncode == 0 and " ok: " in done.stdout, done.stdout + done.stderr
        print(f"python -m helpers.app.cycle {k + 1}/{repeat}: {seconds[-1]:.2f} s", flush=True)
    return spread(seconds)


def in_sequence(base: Path, tmp: Path) -> dict[str, Any]:
    """Daily cycles in one folder, as cron runs `make operate`: the held-out days become one inbox
    file per day, and each is taken in by its own ``python -m helpers.app.cycle``.

    The first cycle in the copied folder is timed on its own: it runs at today's date, so the
    weekly retraining rule is due (the copy's last decision is years old), and its registry
    lookup is cold (the copy's store is at a new path). The later cycles are what a day costs
    once the loop runs: the rule not due, the champion found without asking MLflow unless the
    store changed since the last cycle.
    """
    folder = tmp / "daily"
    env = {**os.environ, **fresh_copy(base, folder)}
    (folder / "inbox" / "bench-new-file.csv").unlink()
    frame = pd.read_csv(base / "new-file.csv", dtype=str)
    days = pd.to_datetime(frame.iloc[:, 0]).dt.normalize()
    seconds, notes = [], []
    for k, day in enumerate(sorted(days.unique())):
        path = folder / "inbox" / f"bench-day-{k + 1:02d}.csv"
        frame[(days == day).to_numpy()].to_csv(path, index=False)
        os.utime(path, (time.time() - 3600, time.time() - 3600))  # settled
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "helpers.app.cycle"], env=env, capture_output=True, text=True,
                              timeout=600)
        seconds.append(time.perf_counter() - started)
        assert done.returncode == 0 and " ok: " in done.stdout, done.stdout + done.stderr
        retrained = "retraining due" in done.stdout
        notes.append("retrained" if retrained else "not due")
        print(f"daily cycle {k + 1}: {seconds[-1]:.2f} s ({notes[-1]})", flush=True)
    later = [s for s, n in zip(seconds[1:], notes[1:]) if n == "not due"]
    return {"first_cycle_s": round(seconds[0], 3), "first_cycle": notes[0],
            "daily": spread(later) if later else None, "cycles": [round(s, 3) for s in seconds], "what": notes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="folder of the base replay (made there when absent)")
    parser.add_argument("--hold-days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5, help="rendered cycles in this process")
    parser.add_argument("--subprocess", type=int, default=0, help="rendered cycles as `python -m helpers.app.cycle`")
    parser.add_argument("--daily", action="store_true",
                        help="also one cycle per held-out day in one folder, as cron runs `make operate`")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    use_test_profile()
    base = args.base or Path(tempfile.mkdtemp(prefix="cycle-base-"))
    if not (base / "base.json").exists():
        print(f"making the base replay in {base} ...", flush=True)
        make_base(base, args.hold_days)
    result: dict[str, Any] = {"load_before": os.getloadavg(), "base": json.loads((base / "base.json").read_text())}
    with tempfile.TemporaryDirectory(prefix="cycle-pages-") as tmp:
        if args.repeat:
            result["in_process"] = in_process(base, Path(tmp), args.repeat)
        if args.subprocess:
            result["subprocess"] = in_subprocess(base, Path(tmp), args.subprocess)
        if args.daily:
            result["daily"] = in_sequence(base, Path(tmp))
    result["load_after"] = os.getloadavg()
    text = json.dumps(result, indent=1)
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
