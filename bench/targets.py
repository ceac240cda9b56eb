"""The sections of ``make bench`` that measure issue 14's targets, and the targets table.

Sections (each ``section(settings, repeat, tmp) -> dict``, registered in ``bench/run.py``):

- ``pipeline``: ``python -m helpers.app.pipeline build`` (what ``make run`` runs) as a child
  process, from an empty folder each run (products, reports, warehouse and MLflow store all
  fresh), N runs of the full profile and N of the fast one, each task's median seconds from
  the table the build prints; then a no-op rebuild of the last full run's folder, as the
  command (interpreter start included) and in process (:func:`helpers.app.pipeline.build`).
- ``cv_incremental``: on that folder, one model's setting changed (``HELPERS_MODEL_SETTINGS``)
  and the pipeline built again: its time, the comparison task's, and the (model, fold) fits run
  against those read from the cross-validation cache.
- ``comparison``: the daily and hourly model comparisons on every core and without the cache,
  against the same in one process.
- ``script_ratio``: the same analysis as one plain script (``bench/analysis_script.py``), and
  the ratio of the pipeline's median to the script's.
- ``growth``: the daily comparison and one operating cycle on the default year and on four
  years made from it (:func:`repeat_years`).
- ``make_test``: ``make test``, its time and pytest's counts.

The number of runs and the timeouts come from environment variables (``BENCH_*``, below); the
profile of the "full-profile" sections from ``BENCH_PROFILE`` (``full``, env.yaml's; ``test``
for a quick smoke run: the targets table then says the numbers are not the full profile's).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analysis_script import environment
from helpers.core.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
#: What the sections share within one ``bench/run.py`` run: ``shared`` (a folder that lives for
#: the whole run), ``last_full`` (the last full-profile build's folder and profile), ``results``.
STATE: dict[str, Any] = {}


class BenchInputError(ValueError):
    """A ``BENCH_*`` variable the bench cannot use; the message names it and what it allows."""


class SectionFailed(RuntimeError):
    """A measured command failed or ran out of time; the message says which and what to change."""


def env_int(name: str, default: int, smallest: int = 1) -> int:
    """The whole number in environment variable ``name`` (``default`` when unset or empty)."""
    text = os.environ.get(name, "").strip()
    try:
        value = int(text) if text else default
    except ValueError:
        raise BenchInputError(f"{name} must be a whole number of at least {smallest}, got {text!r}") from None
    if value < smallest:
        raise BenchInputError(f"{name} must be a whole number of at least {smallest}, got {value}")
    return value


def bench_profile() -> str:
    """The profile of the full-profile sections: ``BENCH_PROFILE``, else ``full`` (env.yaml)."""
    profile = os.environ.get("BENCH_PROFILE", "").strip() or "full"
    if profile != "full" and not (ROOT / f"env.{profile}.yaml").exists():
        raise BenchInputError(f"BENCH_PROFILE must be full or a profile with an env.<name>.yaml in {ROOT}, "
                              f"got {profile!r}")
    return profile


def now() -> str:
    """The time now, UTC, to the second (each section records when it measured)."""
    return pd.Timestamp.now("UTC").isoformat(timespec="seconds")


def check_inputs() -> None:
    """Read every ``BENCH_*`` variable once, so a bad one stops the bench before anything runs."""
    bench_profile()
    for name, default in (("BENCH_PIPELINE_RUNS", 3), ("BENCH_BUILD_TIMEOUT", 1200), ("BENCH_COMPARISON_RUNS", 3),
                          ("BENCH_SERIAL_RUNS", 1), ("BENCH_GROWTH_RUNS", 1), ("BENCH_MAKE_TEST_TIMEOUT", 1200)):
        env_int(name, default)
    cycle = os.environ.get("BENCH_GROWTH_CYCLE_PROFILE", "").strip()
    if cycle and cycle != "full" and not (ROOT / f"env.{cycle}.yaml").exists():
        raise BenchInputError(f"BENCH_GROWTH_CYCLE_PROFILE must be full or a profile with an env.<name>.yaml in "
                              f"{ROOT}, got {cycle!r}")


def spread(values: list[float]) -> dict[str, Any]:
    """Median, min and max of some seconds, and the runs themselves."""
    return {"median_s": statistics.median(values), "min_s": min(values), "max_s": max(values),
            "runs_s": [round(v, 3) for v in values]}


def profile_settings(profile: str, **overrides: Any) -> Settings:
    """The settings of ``profile`` (``full``: env.yaml alone), whatever ``HELPERS_PROFILE`` says."""
    with environment({"HELPERS_PROFILE": None if profile == "full" else profile}):
        return load_settings(**overrides)


def pipeline_env(folder: Path, profile: str) -> dict[str, str | None]:
    """Variables that point a build's every output at ``folder`` (fresh MLflow store included)."""
    return {"HELPERS_PRODUCTS": str(folder / "products"), "HELPERS_REPORTS": str(folder / "reports"),
            "HELPERS_WAREHOUSE_PATH": str(folder / "warehouse.duckdb"), "HELPERS_MLFLOW_DIR": str(folder / "mlflow"),
            "HELPERS_PROFILE": None if profile == "full" else profile, "PLOOMBER_STATS_ENABLED": "false",
            "MLFLOW_TRACKING_URI": None, "MLFLOW_REGISTRY_URI": None}


def build_command(profile: str) -> list[str]:
    """``make run``'s command for ``profile``."""
    return [sys.executable, "-m", "helpers.app.pipeline", "build",
            *([] if profile == "full" else ["--profile", profile])]


def run_command(command: list[str], overrides: Mapping[str, str | None], timeout: int, timeout_setting: str,
                check: bool = True) -> tuple[float, str, int]:
    """Run ``command`` from the project root with the environment plus ``overrides``; its wall
    seconds, stdout and stderr together, and exit status. Stopped (with its whole process group:
    the cross-validation workers too) after ``timeout`` seconds."""
    env = dict(os.environ)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    shown = " ".join(command[2:] if command[0] == sys.executable else command)
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
        raise SectionFailed(f"`{shown}` ran more than {timeout} s and was stopped; set {timeout_setting} "
                            "to allow longer") from None
    seconds = time.perf_counter() - started
    if check and child.returncode != 0:
        raise SectionFailed(f"`{shown}` exited {child.returncode}: {output.strip()[-1500:]}")
    return seconds, output, child.returncode


TASK_ROW = re.compile(r"^\s*(\S+)\s+(True|False)\s+([0-9.eE+-]+)\s*$", re.MULTILINE)


def parse_task_table(output: str) -> dict[str, dict[str, Any]]:
    """The task table ``python -m helpers.app.pipeline build`` prints: ``{task: {ran, seconds}}``."""
    return {name: {"ran": ran == "True", "seconds": float(seconds)} for name, ran, seconds in TASK_ROW.findall(output)}


def fresh_builds(profile: str, runs: int, parent: Path, timeout: int) -> tuple[dict[str, Any], Path]:
    """``runs`` builds of ``profile``, each from an empty folder under ``parent`` (the previous one
    deleted); their spread and each task's median seconds, and the last run's folder."""
    totals, tables, folder = [], [], None
    for k in range(runs):
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        folder = parent / f"{profile}-{k}"
        seconds, output, _ = run_command(build_command(profile), pipeline_env(folder, profile), timeout,
                                         "BENCH_BUILD_TIMEOUT")
        table = parse_task_table(output)
        if not table:
            raise SectionFailed(f"the {profile} build printed no task table: {output.strip()[-500:]}")
        totals.append(seconds)
        tables.append(table)
        print(f"  {profile} profile, fresh build {k + 1}/{runs}: {seconds:.1f} s", flush=True)
    names = list(tables[-1])
    return {"profile": profile, **spread(totals),
            "tasks_median_s": {n: round(statistics.median(t[n]["seconds"] for t in tables if n in t), 3)
                               for n in names},
            "tasks_ran": [sum(row["ran"] for row in t.values()) for t in tables], "tasks": len(names)}, folder


def noop_rebuilds(folder: Path, profile: str, timeout: int, runs: int = 3) -> dict[str, Any]:
    """A second build of ``folder`` with nothing changed: as the command, and in this process
    (after one untimed call that pays the imports)."""
    from helpers.app.pipeline import build

    commands, ran = [], []
    for _ in range(runs):
        seconds, output, _ = run_command(build_command(profile), pipeline_env(folder, profile), timeout,
                                         "BENCH_BUILD_TIMEOUT")
        commands.append(seconds)
        ran.append(sum(row["ran"] for row in parse_task_table(output).values()))
    in_process = []
    with environment(pipeline_env(folder, profile)):
        started = time.perf_counter()
        build(load_settings())
        first = time.perf_counter() - started
        for _ in range(runs):
            started = time.perf_counter()
            table = build(load_settings())
            in_process.append(time.perf_counter() - started)
            ran.append(int(table["ran"].sum()))
    return {"command": spread(commands), "in_process": {**spread(in_process), "first_call_s": round(first, 3)},
            "tasks_ran": ran}


#: ``make run``'s command with the garbage-collector policy (helpers.core.collector) replaced by nothing.
WITHOUT_GC_POLICY = ("import contextlib, sys, helpers.core.collector as c; c.frozen_survivors = contextlib.nullcontext; "
                     "from helpers.app.pipeline import main; sys.exit(main(['build', *sys.argv[1:]]))")


def bench_gc_policy(settings: Settings, repeat: int, tmp: Path) -> dict[str, Any]:
    """The build with and without the collector policy (:mod:`helpers.core.collector`), each from an
    empty folder, ``BENCH_GC_RUNS`` (2) of each, interleaved; the profile of ``bench_profile``."""
    runs, timeout, profile = env_int("BENCH_GC_RUNS", 2), env_int("BENCH_BUILD_TIMEOUT", 1200), bench_profile()
    tail = build_command(profile)[4:]  # after `python -m helpers.app.pipeline build`
    seconds: dict[str, list[float]] = {"with_policy": [], "without_policy": []}
    for k in range(runs):
        for name, command in (("with_policy", build_command(profile)),
                              ("without_policy", [sys.executable, "-c", WITHOUT_GC_POLICY, *tail])):
            folder = tmp / f"{name}-{k}"
            took, output, _ = run_command(command, pipeline_env(folder, profile), timeout, "BENCH_BUILD_TIMEOUT")
            if not parse_task_table(output):
                raise SectionFailed(f"the {name} build printed no task table: {output.strip()[-500:]}")
            seconds[name].append(took)
            shutil.rmtree(folder, ignore_errors=True)
            print(f"  {profile} profile, {name.replace('_', ' ')} {k + 1}/{runs}: {took:.1f} s", flush=True)
    with_policy, without = spread(seconds["with_policy"]), spread(seconds["without_policy"])
    return {"profile": profile, "with_policy": with_policy, "without_policy": without,
            "speedup": without["median_s"] / with_policy["median_s"], "measured_utc": now(),
            "note": "`make run`'s command from an empty folder, with helpers.core.collector's policy and with it "
                    "replaced by a null context (the same code otherwise), interleaved."}


def bench_pipeline(settings: Settings, repeat: int, tmp: Path) -> dict[str, Any]:
    runs, timeout, profile = env_int("BENCH_PIPELINE_RUNS", 3), env_int("BENCH_BUILD_TIMEOUT", 1200), bench_profile()
    parent = STATE.get("shared", tmp)
    full, folder = fresh_builds(profile, runs, parent, timeout)
    STATE["last_full"] = (folder, profile)
    noop = noop_rebuilds(folder, profile, timeout)
    fast, fast_folder = fresh_builds("test", runs, tmp, timeout)
    shutil.rmtree(fast_folder, ignore_errors=True)
    return {
        "full": full, "fast": fast, "noop_rebuild": noop, "measured_utc": now(),
        "note": f"`python {' '.join(build_command(profile)[1:])}` as a child process from the project root, each run from "
                "an empty folder: products, reports, DuckDB warehouse and MLflow store (SQLite, its migrations "
                "included) all fresh; PLOOMBER_STATS_ENABLED=false. Task seconds parsed from the table the build "
                "prints. The no-op rebuild is a second build of the last full run's folder: as the command "
                "(interpreter start and imports included) and in process (helpers.app.pipeline.build, after one "
                "untimed call).",
    }


# -- the comparison ----------------------------------------------------------------------------
def comparison_frames(settings: Settings, source: Path, warehouse: Path) -> dict[str, pd.DataFrame]:
    """``source`` ingested into a fresh DuckDB file; the daily and hourly frames the comparison
    notebook reads from it."""
    from helpers.data.ingest import ingest_file
    from helpers.data.quality import SeriesSpec
    from helpers.data.series import load_series
    from helpers.forecast import comparison
    from helpers.warehouse import Warehouse

    with Warehouse.open("duckdb", warehouse) as wh:
        ingest_file(source, SeriesSpec.from_settings(settings), wh)
        return {grain: comparison.prepare_frame(load_series(wh, settings.series_id, grain,
                                                            max_fill_steps=settings.max_fill_steps))
                for grain in ("daily", "hourly")}


def warm_up(frame: pd.DataFrame, settings: Settings, grain: str) -> float:
    """Fit each model of the comparison once (the first fold), in this process; its seconds. The
    imports and the code libraries compile on first use (numba's, cached on disk for the workers
    too) are then not in the first timed run, whichever series it is."""
    from helpers.forecast import backtest, comparison

    config = comparison.ComparisonConfig.from_settings(settings, grain)
    frame = config.with_calendar(frame)
    started = time.perf_counter()
    first = min(config.min_train, len(frame) // 2)
    cutoff = backtest.make_cutoffs(frame["ds"], config.horizon, config.n_folds, first)[0]
    backtest.backtest(frame, config.build(config.models, frame), config.horizon, [cutoff])
    return time.perf_counter() - started


def time_comparison(frame: pd.DataFrame, settings: Settings, grain: str, jobs: int, runs: int) -> dict[str, Any]:
    """``runs`` comparisons without the cache; their spread and each model's median fold seconds.
    Each run starts its worker processes, as a build's comparison does (the pool of the run before
    is shut down first)."""
    from joblib.externals.loky import get_reusable_executor

    from helpers.forecast import comparison

    config = comparison.ComparisonConfig.from_settings(settings, grain)
    seconds = []
    for _ in range(runs):
        get_reusable_executor().shutdown(wait=True)
        started = time.perf_counter()
        run = comparison.run_comparison(frame, config, jobs=jobs)
        seconds.append(time.perf_counter() - started)
    per_model = run.timings.groupby("model")["seconds"].median().round(3).to_dict()
    return {**spread(seconds), "jobs": jobs, "fits": len(run.timings), "model_fold_median_s": per_model}


def bench_comparison(settings: Settings, repeat: int, tmp: Path) -> dict[str, Any]:
    from helpers.forecast.backtest import usable_cores

    profile = bench_profile()
    runs, serial_runs = env_int("BENCH_COMPARISON_RUNS", 3), env_int("BENCH_SERIAL_RUNS", 1)
    chosen = profile_settings(profile)
    frames = comparison_frames(chosen, chosen.source_file, tmp / "comparison.duckdb")
    result: dict[str, Any] = {"profile": profile, "cores": usable_cores(), "measured_utc": now()}
    for grain in ("daily", "hourly"):
        result[f"{grain}_warm_up_s"] = warm_up(frames[grain], chosen, grain)
        parallel = time_comparison(frames[grain], chosen, grain, 0, runs)
        serial = time_comparison(frames[grain], chosen, grain, 1, serial_runs)
        result[grain] = {"all_cores": parallel, "one_process": serial,
                         "speedup": serial["median_s"] / parallel["median_s"]}
        print(f"  {grain} comparison: {parallel['median_s']:.1f} s on every core, {serial['median_s']:.1f} s in one "
              "process", flush=True)
    result["note"] = ("helpers.forecast.comparison.run_comparison on the default file ingested into a fresh DuckDB "
                      "(all models and folds of the profile, no cross-validation cache): jobs=0 (cv_jobs 0, one "
                      "process per core, started afresh for each run as in a build) against jobs=1, in this process, "
                      "after one untimed fold of each model (imports, compiled code).")
    return result


# -- incremental cross-validation ---------------------------------------------------------------
CACHE_SUMMARY = re.compile(r"(daily|hourly): (\d+) of (\d+) \(model, fold\) fits run, (\d+) read from the "
                           r"cross-validation cache")


def notebook_text(path: Path) -> str:
    """The text outputs of an executed notebook (streams, plain text and Markdown)."""
    import nbformat

    parts = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            data = output.get("data", {})
            parts += [data.get("text/plain", ""), data.get("text/markdown", "")]
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


def cache_counts(text: str) -> dict[str, dict[str, int]]:
    """The comparison notebook's cache summary: fits run, their total and those read, by grain."""
    return {grain: {"run": int(run), "total": int(total), "cached": int(cached)}
            for grain, run, total, cached in CACHE_SUMMARY.findall(text)}


def changed_model_settings(settings: Settings) -> tuple[str, dict]:
    """An expensive model of the daily comparison (Prophet) and ``model_settings`` with its
    ``changepoint_prior_scale`` changed."""
    models = settings.daily_models.split(",")
    model = next((m for m in ("prophet", "prophet_temperature") if m in models), None)
    if model is None:
        raise SectionFailed(f"cv_incremental changes Prophet's changepoint_prior_scale, and the {settings.profile} "
                            "profile's daily_models has no prophet model; add prophet to daily_models")
    own = dict(settings.model_settings.get(model, {}))
    own["changepoint_prior_scale"] = 0.2 if own.get("changepoint_prior_scale") == 0.1 else 0.1
    return model, {**settings.model_settings, model: own}


def bench_cv_incremental(settings: Settings, repeat: int, tmp: Path) -> dict[str, Any]:
    profile, timeout = bench_profile(), env_int("BENCH_BUILD_TIMEOUT", 1200)
    result: dict[str, Any] = {"profile": profile, "measured_utc": now()}
    kept = STATE.get("last_full")
    if kept and kept[1] == profile and kept[0].exists():
        folder = kept[0]
        result["first_build"] = "the pipeline section's last full-profile build"
    else:
        folder = tmp / "build"
        seconds, _, _ = run_command(build_command(profile), pipeline_env(folder, profile), timeout,
                                    "BENCH_BUILD_TIMEOUT")
        result["first_build"] = f"a fresh build made here, {seconds:.1f} s"
    env = pipeline_env(folder, profile)
    with environment(env):
        model, changed = changed_model_settings(load_settings())
    cache = folder / "products" / "model" / "cv_cache"
    before = sum(1 for _ in cache.rglob("*.json"))
    seconds, output, _ = run_command(build_command(profile), {**env, "HELPERS_MODEL_SETTINGS": json.dumps(changed)},
                                     timeout, "BENCH_BUILD_TIMEOUT")
    table = parse_task_table(output)
    fits = cache_counts(notebook_text(folder / "products" / "model_comparison.ipynb"))
    print(f"  second build, {model} changed: {seconds:.1f} s; fits {fits}", flush=True)
    result.update({
        "changed": {model: changed[model]}, "second_build_s": seconds,
        "model_comparison_s": table.get("model_comparison", {}).get("seconds"),
        "tasks_ran": [name for name, row in table.items() if row["ran"]], "fits": fits,
        "cache_files_before": before, "cache_files_added": sum(1 for _ in cache.rglob("*.json")) - before,
    })
    results = STATE.get("results", {})
    full = results.get("pipeline", {}).get("full", {})
    if full.get("profile") == profile:
        result["against_fresh_model_comparison_task_s"] = full.get("tasks_median_s", {}).get("model_comparison")
    compared = results.get("comparison", {})
    if compared.get("profile") == profile and "daily" in compared:
        result["against_comparisons_without_cache_s"] = (compared["daily"]["all_cores"]["median_s"]
                                                         + compared["hourly"]["all_cores"]["median_s"])
    result["note"] = (f"HELPERS_MODEL_SETTINGS changes {model}'s changepoint_prior_scale on a built folder and "
                      "`python -m helpers.app.pipeline build` runs again (a child process; the tasks downstream of "
                      "the comparison run too). Fits counted from the comparison notebook's cache summary. Against: "
                      "the comparison task of a fresh build, and the daily plus hourly comparisons with no cache "
                      "(comparison section).")
    return result


# -- the cost of notebooks ----------------------------------------------------------------------
def bench_script_ratio(settings: Settings, repeat: int, tmp: Path) -> dict[str, Any]:
    import analysis_script

    profile = bench_profile()
    runs, timeout = env_int("BENCH_PIPELINE_RUNS", 3), env_int("BENCH_BUILD_TIMEOUT", 1200)
    totals, tasks = [], []
    for k in range(runs):
        folder = tmp / f"script-{k}"
        env = pipeline_env(folder, profile)
        script = folder / "analysis.py"
        folder.mkdir(parents=True)
        made = analysis_script.pipeline_script(env)
        script.write_text(made.text)
        seconds, output, _ = run_command([sys.executable, str(script)], env, timeout, "BENCH_BUILD_TIMEOUT")
        totals.append(seconds)
        tasks.append(analysis_script.script_seconds(output))
        shutil.rmtree(folder, ignore_errors=True)
        print(f"  plain script {k + 1}/{runs}: {seconds:.1f} s", flush=True)
    result: dict[str, Any] = {
        "profile": profile, "script": spread(totals), "measured_utc": now(),
        "tasks_median_s": {n: round(statistics.median(t[n] for t in tasks), 3) for n in tasks[-1]},
        "left_out": made.left_out,
    }
    full = STATE.get("results", {}).get("pipeline", {}).get("full", {})
    if full.get("profile") == profile:
        result["pipeline_median_s"] = full["median_s"]
        result["pipeline_measured_utc"] = STATE["results"]["pipeline"].get("measured_utc")
        result["ratio"] = full["median_s"] / result["script"]["median_s"]
    else:
        result["ratio"] = None
        result["why_no_ratio"] = f"no {profile}-profile pipeline result to compare with: run the pipeline section"
    result["note"] = (
        "The script (bench/analysis_script.py) is made from the pipeline's rendered DAG: each notebook's code cells "
        "with the parameters Ploomber injects, each Python task called with its params, in the build's order, run "
        "as `python analysis.py` from fresh folders (interpreter start included, as for the build). It leaves out "
        "what only the pipeline does: the reports task (rendering every notebook to HTML and publishing the site), "
        "capturing and storing the cells' outputs (tables, figures) in executed notebooks, and Ploomber's "
        "bookkeeping (product checks, source hashing, copies of the last good products). So the ratio is the whole "
        "price of the notebook pipeline over the bare computation, pages included.")
    return result


# -- how the cost grows -------------------------------------------------------------------------
def repeat_years(frame: pd.DataFrame, copies: int, country: str | None, subdiv: str | None,
                 timestamp_col: str = "timestamp", workday_col: str = "workday") -> pd.DataFrame:
    """``frame`` (a year, read as text) followed by ``copies - 1`` copies of it, copy ``k``'s
    timestamps moved by ``k`` times its span (365 days for the default year), so all continue one
    grid; each copy's work-day column recomputed from the holiday calendar of its new dates (every
    other column repeated as it is). Without a calendar (``country`` empty) the copies keep the
    original flags."""
    from helpers.data.calendar import workday_flags

    stamps = pd.to_datetime(frame[timestamp_col])
    span = stamps.iloc[-1] - stamps.iloc[0] + (stamps.iloc[1] - stamps.iloc[0])
    parts = []
    for k in range(copies):
        moved = stamps + k * span
        copy = frame.assign(**{timestamp_col: moved.dt.strftime("%Y-%m-%d %H:%M:%S")})
        if country and workday_col in frame:
            copy[workday_col] = workday_flags(moved, country, subdiv).astype(int).astype(str).to_numpy()
        parts.append(copy)
    return pd.concat(parts, ignore_index=True)


def one_cycle(source: Path, out: Path, profile: str, settings: Settings) -> dict[str, Any]:
    """The series less its last two weeks replayed (:func:`helpers.app.replay.replay`, ``profile``'s
    comparison), then a cycle on each week, both rendering the monitoring pages; the second is
    timed (the first pays the imports)."""
    from helpers.app import replay

    last = pd.Timestamp(pd.read_csv(source, usecols=[settings.timestamp_col]).iloc[-1, 0]).normalize()
    overrides = {"HELPERS_PROFILE": None if profile == "full" else profile, "PLOOMBER_STATS_ENABLED": "false",
                 "HELPERS_HOLIDAY_COUNTRY": settings.holiday_country or "",
                 "HELPERS_HOLIDAY_SUBDIV": settings.holiday_subdiv or "",
                 "HELPERS_HEMISPHERE": settings.hemisphere or ""}
    with environment(overrides), contextlib.redirect_stdout(io.StringIO()):  # the cycles' reports: not needed here
        done = replay.replay(source, out, train_until=(last - pd.Timedelta(days=14)).date().isoformat(), step="7D",
                             render_every=1, say=lambda line: None)
    statuses = [row["status"] for row in done.cycles]
    if len(done.cycles) < 2 or any(s != "ok" for s in statuses):
        raise SectionFailed(f"the replay of {source.name} ran cycles {statuses}, not two that loaded data")
    return {"cycle_s": done.cycles[-1]["seconds"], "first_cycle_s": done.cycles[0]["seconds"],
            "replay_train_s": done.seconds["train"]}


def bench_growth(settings: Settings, repeat: int, tmp: Path) -> dict[str, Any]:
    profile = bench_profile()
    cycle_profile = os.environ.get("BENCH_GROWTH_CYCLE_PROFILE", "").strip() or "test"
    runs = env_int("BENCH_GROWTH_RUNS", 1)
    base = profile_settings(profile)
    raw = pd.read_csv(base.source_file, dtype=str, keep_default_na=False)
    result: dict[str, Any] = {"profile": profile, "cycle_profile": cycle_profile, "measured_utc": now()}
    for copies in (1, 4):
        frame = repeat_years(raw, copies, base.holiday_country, base.holiday_subdiv, base.timestamp_col,
                             base.workday_col or "workday")
        path = tmp / f"series_{copies}x.csv"
        frame.to_csv(path, index=False)
        chosen = profile_settings(profile, source_file=str(path), holiday_country=base.holiday_country or "",
                                  holiday_subdiv=base.holiday_subdiv or "", hemisphere=base.hemisphere or "")
        daily = comparison_frames(chosen, path, tmp / f"growth_{copies}x.duckdb")["daily"]
        if copies == 1:
            result["warm_up_s"] = warm_up(daily, chosen, "daily")
        timed = time_comparison(daily, chosen, "daily", 0, runs)
        cycle = one_cycle(path, tmp / f"replay_{copies}x", cycle_profile, chosen)
        result[f"{copies}x"] = {"rows": len(frame), "days": len(daily), "span": [frame.iloc[0, 0], frame.iloc[-1, 0]],
                                "daily_comparison": timed, **cycle}
        print(f"  {copies}x ({len(daily)} days): daily comparison {timed['median_s']:.1f} s, cycle "
              f"{cycle['cycle_s']:.1f} s", flush=True)
    result["comparison_growth"] = (result["4x"]["daily_comparison"]["median_s"]
                                   / result["1x"]["daily_comparison"]["median_s"])
    result["cycle_growth"] = result["4x"]["cycle_s"] / result["1x"]["cycle_s"]
    result["note"] = (
        "4x: the default year and three copies, each moved by 365 days (one continuous half-hourly grid, "
        "2014-01-01 to 2017-12-30), the work-day column recomputed from the holiday calendar of the new dates "
        "(holiday_country/holiday_subdiv), demand and temperature repeated; 1x is the default year through the same "
        "builder. Daily comparison: all models and folds, every core, no cache, in this process. Cycle: the series "
        f"less its last two weeks replayed ({cycle_profile} profile, as make replay), a cycle per week rendering the "
        "pages, the second timed (helpers.app.replay, in this process). Growth = 4x time / 1x time.")
    return result


# -- make test ----------------------------------------------------------------------------------
PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")


def pytest_counts(output: str) -> dict[str, Any]:
    """pytest's counts and its own seconds from the summary line at the end of its output."""
    summary = next((line for line in reversed(output.splitlines())
                    if re.search(r"\d+ (passed|failed|errors?)", line) and re.search(r" in [\d.]+s", line)), "")
    counts = {("error" if kind.startswith("error") else kind): int(n) for n, kind in PYTEST_COUNT.findall(summary)}
    seconds = re.search(r" in ([\d.]+)s", summary)
    return {"counts": counts, "pytest_s": float(seconds.group(1)) if seconds else None, "summary": summary.strip(" =")}


def bench_make_test(settings: Settings, repeat: int, tmp: Path) -> dict[str, Any]:
    command = shlex.split(os.environ.get("BENCH_MAKE_TEST", "").strip() or "make test")
    timeout = env_int("BENCH_MAKE_TEST_TIMEOUT", 1200)
    seconds, output, code = run_command(command, {}, timeout, "BENCH_MAKE_TEST_TIMEOUT", check=False)
    parsed = pytest_counts(output)
    print(f"  {' '.join(command)}: {seconds:.0f} s, exit {code}, {parsed['summary']}", flush=True)
    return {"command": " ".join(command), "seconds": seconds, "exit": code, **parsed, "measured_utc": now(),
            "note": "from the project root, a child process; its exit status and pytest's summary line as printed"}


# -- the targets table --------------------------------------------------------------------------
def _get(results: Mapping[str, Any], *keys: str) -> Any:
    value: Any = results
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _numbers(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every number and boolean in a nested mapping, as (dotted key, value)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _numbers(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (bool, int, float)):
        yield prefix, value


def arima_grid_figures(section: Mapping[str, Any]) -> tuple[float | None, float | None, list[str]]:
    """The speed-up and the relative pooled-RMSE difference of the ARIMA grid section, read
    defensively (another branch defines its keys): the first number whose key names a ratio or
    speed-up (not of RMSE), and the first whose key names RMSE with a ratio, difference or gap
    (a ratio near 1 becomes its distance from 1; a percentage becomes a fraction). Also the keys read."""
    speed = gap = None
    read = []
    for key, value in _numbers(section):
        last = key.rsplit(".", 1)[-1].lower()
        if isinstance(value, bool):
            continue
        if speed is None and "rmse" not in last and re.search(r"ratio|speed_?up|faster|times", last):
            speed = float(value)
            read.append(key)
        elif gap is None and "rmse" in last and re.search(r"ratio|diff|gap|relative|change|within", last):
            value = float(value)
            if "ratio" in last and 0.5 < value < 2:
                value = abs(value - 1)
            elif "pct" in last or "percent" in last:
                value = abs(value) / 100
            gap = abs(value)
            read.append(key)
    return speed, gap, read


def _row(target: str, value: float | None, limit: float | None, source: str, *, unit: str = "s",
         at_most: bool = True, profile: str | None = "full", measured: str | None = None,
         limit_text: str | None = None) -> dict[str, Any]:
    """One row of the targets table. ``profile``: the profile the number was measured on (a
    full-profile target measured on another says so instead of yes/no)."""
    if measured is not None:
        shown = measured
    elif value is None:
        shown = "not run"
    else:
        shown = f"{value:.2f}x" if unit == "x" else f"{value:.1f} {unit}"
    if limit is None:
        met, limit_shown = ("no limit" if value is not None else "not run"), limit_text or "none"
    else:
        bound = f"{limit:g}x" if unit == "x" else f"{limit:g} {unit}"
        limit_shown = limit_text or ("<= " if at_most else ">= ") + bound
        if value is None:
            met = "not run"
        elif profile not in (None, "full"):
            met = f"not judged ({profile} profile)"
        else:
            met = "yes" if (value <= limit if at_most else value >= limit) else "no"
    return {"target": target, "measured": shown, "limit": limit_shown, "met": met, "source": source, "value": value}


def targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Issue 14's targets against ``results`` (a ``bench/results.json``): one row each with the
    target, the measured median, the limit, whether it is met (``yes``, ``no``, ``not run``) and
    the section and key it comes from."""
    rows = []
    full = _get(results, "pipeline", "full") or {}
    fast = _get(results, "pipeline", "fast") or {}
    profile = full.get("profile")
    for limit, label in ((90, "full-profile make run, fresh folder"), (60, "full-profile make run (stretch)")):
        rows.append(_row(label, full.get("median_s"), limit, "pipeline.full.median_s", profile=profile))
    rows.append(_row("fast-profile make run, fresh folder", fast.get("median_s"), 30, "pipeline.fast.median_s",
                     profile=None))
    rows.append(_row("no-op rebuild, the command", _get(results, "pipeline", "noop_rebuild", "command", "median_s"),
                     2, "pipeline.noop_rebuild.command.median_s", profile=None))
    rows.append(_row("no-op rebuild, in process", _get(results, "pipeline", "noop_rebuild", "in_process", "median_s"),
                     2, "pipeline.noop_rebuild.in_process.median_s", profile=None))
    rows.append(_row("daily model comparison, all models and folds", _get(results, "comparison", "daily",
                                                                             "all_cores", "median_s"),
                     40, "comparison.daily.all_cores.median_s", profile=_get(results, "comparison", "profile")))
    grid = results.get("arima_grid")
    if isinstance(grid, Mapping):
        speed, gap, read = arima_grid_figures(grid)
        shown = (f"{speed:.1f}x" if speed is not None else "speed-up not found") + ", pooled RMSE " + \
            (f"{gap:.1%} apart" if gap is not None else "difference not found")
        met = "yes" if speed is not None and gap is not None and speed >= 10 and gap <= 0.03 else \
            ("unreadable" if speed is None or gap is None else "no")
        rows.append({"target": "ARIMA order grid against pmdarima", "measured": shown,
                     "limit": ">= 10x faster, pooled RMSE within 3%", "met": met,
                     "source": "arima_grid." + (", ".join(read) or "(no ratio or RMSE key)"), "value": speed})
    else:
        rows.append({"target": "ARIMA order grid against pmdarima", "measured": "not run",
                     "limit": ">= 10x faster, pooled RMSE within 3%", "met": "not run", "source": "arima_grid",
                     "value": None})
    rows.append(_row("pipeline / plain script", _get(results, "script_ratio", "ratio"), 1.3,
                     "script_ratio.ratio (pipeline.full.median_s / script_ratio.script.median_s)", unit="x",
                     profile=_get(results, "script_ratio", "profile")))
    test = results.get("make_test") or {}
    passed = _get(test, "counts", "passed")
    failed = (_get(test, "counts", "failed") or 0) + (_get(test, "counts", "error") or 0)
    rows.append(_row("make test", test.get("seconds"), 300, "make_test.seconds", profile=None,
                     measured=None if not test else f"{test['seconds']:.0f} s, {passed} passed"
                     + (f", {failed} failed" if failed else "")))
    if test and (test.get("exit") != 0 or failed):
        rows[-1]["met"] = "no (tests failed)"
    rows.append(_row("growth of the daily comparison, 4x series", _get(results, "growth", "comparison_growth"), None,
                     "growth.comparison_growth (4x / 1x seconds)", unit="x"))
    rows.append(_row("growth of an operating cycle, 4x series", _get(results, "growth", "cycle_growth"), None,
                     "growth.cycle_growth (4x / 1x seconds)", unit="x"))
    # Issue 12's speed targets, beside issue 14's.
    rows.append(_row("operating cycle as make operate runs it, daily, rule not due",
                     _get(results, "daily_cycles", "daily", "median_s"), 10, "daily_cycles.daily.median_s",
                     profile=None))
    retrained = _get(results, "daily_cycles", "first_cycle") == "retrained"  # else it timed something else
    rows.append(_row("operating cycle as make operate runs it, retraining due", _get(
        results, "daily_cycles", "first_cycle_s") if retrained else None, 10, "daily_cycles.first_cycle_s",
        profile=None))
    rows.append(_row("make replay on the default data", _get(results, "replay", "replay_total_s"), 180,
                     "replay.replay_total_s", profile=None))
    second = _get(results, "cv_incremental", "second_build_s")
    task = _get(results, "cv_incremental", "model_comparison_s")
    rows.append(_row("second build after one model's setting changed", second, None,
                     "cv_incremental.second_build_s", measured=None if second is None else
                     f"{second:.1f} s (model_comparison {task:.1f} s)" if task is not None else f"{second:.1f} s"))
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The targets table in Markdown (the README's benchmark table is pasted from it)."""
    lines = ["| target | measured (median) | limit | met | from (bench/results.json) |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['target']} | {r['measured']} | {r['limit']} | {r['met']} | {r['source']} |" for r in rows]
    return "\n".join(lines)
