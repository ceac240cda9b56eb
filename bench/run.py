"""Benchmark harness: `make bench` times the pipeline's stages and writes JSON results.

Each measurement is repeated and reported as its median (with min and max), next to
the obvious alternative measured in the same run:

- validation of the default file (the data-quality checks) against plain parsing;
- ingest into DuckDB against the same ingest through the Snowflake code path (fakesnow);
- rolling mean / lags / week-over-week change in SQL window functions against pandas;
- issue 14's targets (``bench/targets.py``): ``make run`` from an empty folder, full and fast
  profile, with per-task times, and a no-op rebuild (``pipeline``); the daily and hourly
  comparisons on every core against one process (``comparison``); the second build after one
  model's setting changed, with the folds it fitted and read from the cache (``cv_incremental``);
  the pipeline against the same analysis as a plain script (``script_ratio``); the comparison
  and an operating cycle on a series four times longer (``growth``); ``make test``
  (``make_test``). The counts of runs and the timeouts are ``BENCH_*`` variables
  (bench/targets.py says which);
- the full-profile model comparison: seconds per model per fold, and pmdarima's
  auto_arima against statsforecast's AutoARIMA on the same five daily folds;
- the explicit SARIMA order grid (``--only arima_grid``, about 5 minutes): fit+predict
  seconds per fold through statsforecast against the same grid through pmdarima on the full
  profile's 10 daily folds, their pooled RMSE, ``meets_10x`` and ``rmse_within_3pct``;
- interval coverage (not a timing): the full-profile daily comparison on the default file,
  ingested into a fresh DuckDB, with each model's nominal, raw, calibrated and served
  coverage on the evaluation folds (``--only intervals``, a few minutes);
- A/B conversion analysis on the same two-arm data (10,000 users per arm): the exact
  closed-form P(B > A), the whole closed-form analysis, and PyMC NUTS (4 chains x 1,000
  draws, warm), with the largest difference between the two.
- the forecast endpoint: ``wrk`` (Debian's package; 16 connections, 20 s) from a second
  process on loopback against ``python -m helpers.app.service`` (one uvicorn worker, uvloop,
  httptools): requests/s, p50/p99 latency, errors; beside it the in-process cost of the
  same request through the ASGI app with no network or HTTP parsing, and the same load with
  the forecast log off (``--no-forecast-log``) and on (``forecast_log``: both runs, the rows
  the log holds afterwards, the cost of logging), the same with the Prometheus metrics off
  (``--no-metrics``; ``metrics``; with metrics on, ``/metrics`` is scraped every 5 s during the
  load), and with every optional feature off (``make_serve_bare``);
  in process, the request through FastAPI's whole stack (``in_process_asgi_through_fastapi``,
  the direct path off), without metrics, and what recording one request's metrics costs
  (``metrics_recording``: the service's plain counters against prometheus-client's own
  counter and histogram children).
- the endpoint's memory under large bodies (``--only service_memory``): eight connections
  send 10 MB bodies (Content-Length and chunked) while small requests keep coming, then one
  300 MB body; peak resident memory growth, the 413s, the small requests' latency; beside it
  the same load with the body limit raised to 1 GiB.
- the endpoint following the registry (``--only service_reload``): ``make serve`` serving the
  champion of a registry in the run's folder (two versions of the served artifact), loaded by
  wrk while the champion is promoted and rolled back every few seconds, the service checking
  every second (ten times the default); beside it the same server and load with no switch.
- ingest memory (``--only ingest_memory``): wall time and peak resident memory of
  ``python -m helpers.data.ingest`` on the default file repeated 1x, 10x and 50x (shifted
  timestamps, one grid), chunked against the same ingest as one chunk (the whole-file path).
- the operating loop (``--only replay``): ``make replay`` on the default data (history to
  2014-09-30, 14 weekly cycles), its total and per-cycle times, and a cycle with nothing new
  run as ``make operate`` runs it; the obvious alternative, rebuilding the pipeline on each
  new file, is the ``pipeline`` section's fresh build.
- the collector policy (``--only gc_policy``): the build with and without
  ``helpers.core.collector``'s policy, interleaved (bench/targets.py).
- daily cycles (``--only daily_cycles``): the default data less its last week replayed, then
  one ``make operate`` per held-out day in that folder (bench/cycle_pages.py): the first one
  retrains (the rule is due at today's date), the others are a day's cycle.

``--only`` runs some sections and keeps the others' last results in the output file. After the
JSON, the targets table is printed (and stored as ``targets``); ``--table`` prints it from the
output file without running anything. A section whose command fails or times out records its
error and the others go on (exit status 1); a bad ``BENCH_*`` variable stops it first (exit 2).

Later work adds its own sections to ``BENCHMARKS``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")

import pandas as pd  # noqa: E402

from helpers.core.settings import load_settings  # noqa: E402
from helpers.data.ingest import ingest_file  # noqa: E402
from helpers.core.provenance import git_commit, package_versions  # noqa: E402
from helpers.data.quality import SeriesSpec, read_source, validate  # noqa: E402
from helpers.data.series import window_features  # noqa: E402
from helpers.warehouse import Warehouse  # noqa: E402

import targets  # noqa: E402  (bench/targets.py, beside this file)


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    """Median, min and max wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeat": repeat}


def bench_validation(settings, repeat: int) -> dict:
    spec = SeriesSpec.from_settings(settings)
    frame = read_source(settings.source_file)
    return {
        "rows": len(frame),
        "read_csv_text": timed(lambda: read_source(settings.source_file), repeat),
        "validate_all_checks": timed(lambda: validate(frame, spec), repeat),
        "alternative_plain_pandas_parse": timed(
            lambda: pd.read_csv(settings.source_file, parse_dates=[settings.timestamp_col]), repeat),
    }


def bench_ingest(settings, repeat: int, tmp: Path) -> dict:
    spec = SeriesSpec.from_settings(settings)
    results = {}
    with Warehouse.open("duckdb", tmp / "bench.duckdb") as wh:
        results["duckdb_first_load"] = timed(lambda: ingest_file(settings.source_file, spec, wh), 1)
        results["duckdb_reload_upsert"] = timed(lambda: ingest_file(settings.source_file, spec, wh), repeat)
        results["sql_window_features_daily"] = timed(lambda: window_features(wh, spec.series_id, "daily"), repeat)
        results["sql_window_features_hourly"] = timed(lambda: window_features(wh, spec.series_id, "hourly"), repeat)
        hourly = wh.read_series("hourly_series", spec.series_id)

    def pandas_features() -> pd.DataFrame:
        y = hourly.set_index("ts")["y_mean"]
        return pd.DataFrame({"y": y, "y_rolling_mean": y.rolling(24, min_periods=1).mean(), "y_lag_1": y.shift(1),
                             "y_lag_season": y.shift(168), "y_change_vs_season": y / y.shift(168) - 1})

    results["alternative_pandas_window_features_hourly_in_memory"] = timed(pandas_features, repeat)

    import fakesnow

    os.environ.setdefault("SNOWFLAKE_DATABASE", "BENCH")
    os.environ.setdefault("SNOWFLAKE_SCHEMA", "PUBLIC")
    with fakesnow.patch(), Warehouse.open("snowflake") as wh:
        results["snowflake_path_fakesnow_first_load"] = timed(lambda: ingest_file(settings.source_file, spec, wh), 1)
        results["snowflake_path_fakesnow_reload"] = timed(lambda: ingest_file(settings.source_file, spec, wh), repeat)
    return results


def bench_models(settings, repeat: int, tmp: Path) -> dict:
    """Full-profile daily and hourly comparisons: time per model per fold, and the two ARIMA
    engines (pmdarima's auto_arima against statsforecast's AutoARIMA) on the same folds."""
    import numpy as np
    import pmdarima as pm

    from helpers.forecast import backtest as bt
    from helpers.forecast import comparison
    from helpers.forecast.models import Forecaster, interval_columns
    from helpers.data.series import load_series

    class PmdAutoArima(Forecaster):
        name, family = "pmdarima_auto_arima", "ARIMA"

        def fit(self, train):
            self.model_ = pm.auto_arima(train["y"].to_numpy(), m=7, seasonal=True, suppress_warnings=True,
                                        error_action="ignore")
            return self

        def predict(self, future, level=(80, 95)):
            out = {"mean": self.model_.predict(len(future))}
            for lv in level:
                _, bounds = self.model_.predict(len(future), return_conf_int=True, alpha=1 - lv / 100)
                out[f"lo-{lv}"], out[f"hi-{lv}"] = bounds[:, 0], bounds[:, 1]
            return pd.DataFrame(out)[["mean", *interval_columns(level)]]

    with Warehouse.from_settings(settings, read_only=True) as wh:
        daily = comparison.prepare_frame(load_series(wh, settings.series_id, "daily"))
        hourly = comparison.prepare_frame(load_series(wh, settings.series_id, "hourly"))
    results = {}
    for grain, frame in (("daily", daily), ("hourly", hourly)):
        start = time.perf_counter()
        run = comparison.run_comparison(frame, comparison.ComparisonConfig.from_settings(settings, grain))
        results[f"{grain}_comparison_total_s"] = time.perf_counter() - start
        results[f"{grain}_seconds_per_fold_median"] = run.timings.groupby("model")["seconds"].median().to_dict()
        results[f"{grain}_rmse_evaluation_folds"] = run.leaderboard()["rmse"].to_dict()

    config = comparison.ComparisonConfig.from_settings(settings, "daily")
    cutoffs = bt.make_cutoffs(daily["ds"], config.horizon, 5, config.min_train)
    from helpers.forecast.models import model_catalog

    engines = [model_catalog((7,), config.horizon, ["auto_arima"], False, False)[0], PmdAutoArima()]
    forecasts, timings = bt.backtest(daily, engines, config.horizon, cutoffs)
    rmse = {m: float(np.sqrt(((forecasts["y"] - forecasts[m]) ** 2).mean())) for m in ("auto_arima", "pmdarima_auto_arima")}
    seconds = timings.groupby("model")["seconds"].median()
    results["arima_engines_daily_5_folds"] = {
        "statsforecast_AutoARIMA": {"median_fit_s": float(seconds["auto_arima"]), "rmse": rmse["auto_arima"]},
        "pmdarima_auto_arima": {"median_fit_s": float(seconds["pmdarima_auto_arima"]),
                                "rmse": rmse["pmdarima_auto_arima"]},
        "time_ratio_pmdarima_over_statsforecast": float(seconds["pmdarima_auto_arima"] / seconds["auto_arima"]),
    }
    return results


def _fresh_daily(settings, tmp: Path) -> pd.DataFrame:
    """The daily series of ``settings.source_file``, ingested into a fresh DuckDB in ``tmp``."""
    from helpers.data.series import load_series
    from helpers.forecast import comparison

    with Warehouse.open("duckdb", tmp / "daily.duckdb") as wh:
        ingest_file(settings.source_file, SeriesSpec.from_settings(settings), wh)
        return comparison.prepare_frame(load_series(wh, settings.series_id, "daily",
                                                    max_fill_steps=settings.max_fill_steps))


def bench_intervals(settings, repeat: int, tmp: Path) -> dict:
    """Nominal, raw, calibrated and served interval coverage on the evaluation folds of the
    full-profile daily comparison (each fold calibrated on the folds finished before its
    cutoff), from a fresh warehouse."""
    from helpers.forecast import comparison

    daily = _fresh_daily(settings, tmp)
    start = time.perf_counter()
    run = comparison.run_comparison(daily, comparison.ComparisonConfig.from_settings(settings, "daily"))
    table = comparison.interval_coverage(run)

    def by_level(model: str) -> dict:
        return {f"{nominal:.0%}": {k: (v if isinstance(v, str) else float(v)) for k, v in row.items()}
                for nominal, row in table.loc[model].to_dict("index").items()}

    return {
        "profile": settings.profile, "comparison_s": time.perf_counter() - start,
        "selection_cutoffs": [c.date().isoformat() for c in run.selection_cutoffs],
        "evaluation_cutoffs": [c.date().isoformat() for c in run.evaluation_cutoffs],
        "selected": run.selected, "members": run.members,
        "selected_coverage": by_level(run.selected), "ensemble_coverage": by_level("ensemble"),
        "all_models": {m: by_level(m) for m in table.index.get_level_values("model").unique()},
    }


def bench_arima_grid(settings, repeat: int, tmp: Path) -> dict:
    """The explicit SARIMA order grid (``sarima_grid``) through statsforecast against the same
    grid through pmdarima, on the full-profile daily comparison's folds, one fold after the
    other with both engines in each (the folds are the repeats; ``repeat`` is not used).

    Both run with one BLAS thread: statsmodels' small matrix products only lose from
    OpenBLAS's threads, and on a busy machine a lot. ``statsforecast_exact_ml`` is the
    statsforecast engine ranking every candidate by its CSS-ML fit instead of the CSS
    approximation. ``identification_s``: ``candidate_orders`` (pmdarima's ``ndiffs`` and
    ``nsdiffs``, the ACF and PACF), the same for every engine and inside each engine's time.
    """
    import numpy as np
    from threadpoolctl import threadpool_limits

    from helpers.forecast import backtest as bt
    from helpers.forecast import comparison
    from helpers.forecast.models import SarimaGridModel

    import pmdarima  # noqa: F401  (imports are not charged to the first fold)
    import statsforecast.models  # noqa: F401
    import statsmodels.tsa.stattools  # noqa: F401

    daily = _fresh_daily(settings, tmp)
    config = comparison.ComparisonConfig.from_settings(settings, "daily")
    m, h = config.season_lengths[0], config.horizon
    # run_comparison's cutoffs (it moves the first to mid-series when min_train is longer)
    cutoffs = bt.make_cutoffs(daily["ds"], h, config.n_folds, min(config.min_train, len(daily) // 2))
    engines = {"statsforecast": SarimaGridModel(m), "pmdarima": SarimaGridModel(m, engine="pmdarima"),
               "statsforecast_exact_ml": SarimaGridModel(m, approximation=False)}
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    errors: dict[str, list] = {name: [] for name in engines}
    orders: dict[str, list[str]] = {name: [] for name in engines}
    identification = []
    with threadpool_limits(limits=1, user_api="blas"):
        for cutoff in cutoffs:
            train, future = daily[daily["ds"] <= cutoff], daily[daily["ds"] > cutoff].head(h)
            start = time.perf_counter()
            engines["statsforecast"].candidate_orders(train["y"].to_numpy(dtype=float))
            identification.append(time.perf_counter() - start)
            for name, model in engines.items():
                start = time.perf_counter()
                mean = model.fit(train).predict(future.drop(columns="y").reset_index(drop=True))["mean"]
                seconds[name].append(time.perf_counter() - start)
                errors[name].append(future["y"].to_numpy() - mean.to_numpy())
                (p, d, q), (P, D, Q, _) = model.order_, model.seasonal_order_
                orders[name].append(f"({p},{d},{q})({P},{D},{Q}){m}")
            print(f"  {cutoff.date()}: " + ", ".join(f"{n} {seconds[n][-1]:.2f} s {orders[n][-1]}" for n in engines),
                  flush=True)

    def summary(name: str) -> dict:
        return {"median_fit_predict_s": statistics.median(seconds[name]), "min_s": min(seconds[name]),
                "max_s": max(seconds[name]),
                "rmse": float(np.sqrt(np.mean(np.concatenate(errors[name]) ** 2))), "orders": orders[name]}

    results = {name: summary(name) for name in engines}
    speedup = results["pmdarima"]["median_fit_predict_s"] / results["statsforecast"]["median_fit_predict_s"]
    rmse_difference = results["statsforecast"]["rmse"] / results["pmdarima"]["rmse"] - 1
    return {
        "series": "daily", "folds": len(cutoffs), "horizon": h, "cutoffs": [c.date().isoformat() for c in cutoffs],
        "blas_threads": 1, **results,
        "identification_s": {"median": statistics.median(identification), "max": max(identification),
                             "share_of_statsforecast_fold": statistics.median(identification)
                             / results["statsforecast"]["median_fit_predict_s"]},
        "speedup_pmdarima_over_statsforecast": speedup,
        "speedup_pmdarima_over_statsforecast_exact_ml":
            results["pmdarima"]["median_fit_predict_s"] / results["statsforecast_exact_ml"]["median_fit_predict_s"],
        "rmse_relative_difference": rmse_difference,
        "meets_10x": bool(speedup >= 10), "rmse_within_3pct": bool(abs(rmse_difference) <= 0.03),
    }


def bench_ab(settings, repeat: int, tmp: Path) -> dict:
    import numpy as np

    from helpers.ab import bayesian as ab
    from helpers.ab import mcmc
    from helpers.ab.inputs import ABConfig

    rng = np.random.default_rng(settings.ab_seed)
    users = 10_000
    conversions = rng.binomial(users, [0.10, 0.11])
    summary = pd.DataFrame({"variant": ["control", "treatment"], "users": users, "conversions": conversions})
    (a_c, b_c), (a_v, b_v) = ab.beta_parameters(summary)[["a", "b"]].to_numpy()
    config = ABConfig(draws=settings.ab_draws, seed=settings.ab_seed, pymc_draws=1000, pymc_chains=4)
    exact_repeat = max(repeat, 1) * 200
    mcmc.pymc_conversion(summary, config)  # compile and warm up once
    idata = {}

    def nuts():
        idata["last"] = mcmc.pymc_conversion(summary, config)

    results = {
        "users_per_arm": users, "conversions": [int(c) for c in conversions],
        "closed_form_exact_p_beat": timed(lambda: ab.prob_beats(a_c, b_c, a_v, b_v), exact_repeat),
        "closed_form_full_analysis": timed(lambda: ab.conversion_analysis(summary, config), repeat),
        "pymc_nuts_4x1000_warm": timed(nuts, min(repeat, 3)),
    }
    check = mcmc.cross_check(summary, idata["last"], config)
    results["agreement"] = {"max_abs_difference": float(check["difference"].abs().max()),
                            "all_within_4_mcse": bool(check["agree"].all()),
                            "p_beat_closed_form": float(check["closed form"].iloc[-1]),
                            "p_beat_pymc": float(check["PyMC"].iloc[-1])}
    results["speedup_exact_vs_pymc"] = (results["pymc_nuts_4x1000_warm"]["median_s"]
                                        / results["closed_form_exact_p_beat"]["median_s"])
    return results


WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '%s'
"""


def _wrk_seconds(text: str) -> float:
    """A wrk latency such as ``812.00us``, ``1.20ms`` or ``2.01s`` in seconds."""
    import re

    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def parse_wrk(output: str) -> dict:
    """Requests/s, latency percentiles, and every kind of error from ``wrk --latency`` output."""
    import re

    percentiles = {f"p{p}_s": _wrk_seconds(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.M)}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        **percentiles,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def _asgi_call(app, body: bytes) -> tuple[int, bytes]:
    """One POST /predict through the ASGI app, in process (no socket, no HTTP parsing)."""
    import asyncio

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/predict", "raw_path": b"/predict", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000), "app": app}
    sent = {}

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
        elif message["type"] == "http.response.body":
            sent["body"] = sent.get("body", b"") + message.get("body", b"")

    asyncio.get_event_loop().run_until_complete(app(scope, receive, send))
    return sent["status"], sent["body"]


@contextlib.contextmanager
def _serving(command: list[str], env: dict[str, str]) -> Iterator[tuple[str, Any]]:
    """The service started with ``command`` (plus ``--port``) on a free loopback port, with
    ``env`` added to the environment: its URL and process, once ``/health`` answers."""
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([*command, "--port", str(port)], env={**os.environ, **env}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"the service did not start: {server.stdout.read1().decode()}")
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=10)


def _load_server(command: list[str], artifact: str, body: bytes, expected: bytes, wrk: str, script: Path,
                 seconds: int, connections: int, env: dict[str, str] | None = None,
                 scrape_seconds: float | None = None) -> dict:
    """Start the service with ``command`` on a free port (``env`` added to its environment),
    check one answer, then load it with wrk; ``scrape_seconds``: meanwhile GET /metrics that
    often, as Prometheus would (the scrapes are counted in the result).

    Beside wrk's numbers: the server's CPU time per request over the measured run and the
    second after it (the forecast log's last batch), which other processes on the machine
    do not change the way they change requests/s and latency.
    """
    import subprocess
    import threading
    import urllib.request

    import orjson

    server_cpu, wrk_cpu = _pinning()
    with _serving(_pinned(command, server_cpu), {"HELPERS_ARTIFACT": artifact, **(env or {})}) as (url, server):
        check = urllib.request.Request(f"{url}/predict", data=body, headers={"Content-Type": "application/json"})
        served = orjson.loads(urllib.request.urlopen(check, timeout=5).read())
        assert served == orjson.loads(expected), "the server and the in-process app disagree"
        subprocess.run(_wrk_command(wrk, script, url, connections, 2, wrk_cpu), capture_output=True, check=True)  # warm-up
        time.sleep(1.2)
        cpu_before = _cpu_seconds(server.pid)
        stop, scrapes = threading.Event(), []

        def scrape() -> None:
            while not stop.wait(scrape_seconds):
                scrapes.append(len(urllib.request.urlopen(f"{url}/metrics", timeout=5).read()))

        scraper = threading.Thread(target=scrape, daemon=True)
        if scrape_seconds:
            scraper.start()
        done = subprocess.run(_wrk_command(wrk, script, url, connections, seconds, wrk_cpu), capture_output=True,
                              text=True, check=True)
        stop.set()
        if scrape_seconds:
            scraper.join(10)
        time.sleep(1.2)
        cpu = _cpu_seconds(server.pid) - cpu_before
    result = parse_wrk(done.stdout)
    extra = {"metrics_scrapes": len(scrapes), "scrape_every_s": scrape_seconds} if scrape_seconds else {}
    extra["cpus"] = {"server": server_cpu, "wrk": wrk_cpu}
    return {**result, "server_cpu_per_request_s": cpu / result["requests"], **extra, "output": done.stdout}


def _pinning() -> tuple[int | None, int | None]:
    """The CPUs the server and wrk run on: one each when there are two or more (``taskset``), so
    the load generator and the one worker under test do not take turns on the same core and
    wrk's own scheduling delays stay out of the server's p99; ``(None, None)`` otherwise."""
    import shutil

    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return None, None
    return cpus[0], cpus[1]


def _pinned(command: list[str], cpu: int | None) -> list[str]:
    """``command`` run on CPU ``cpu`` only (``taskset``); as it is when ``cpu`` is None."""
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def _wrk_command(wrk: str, script: Path, url: str, connections: int, seconds: int, cpu: int | None) -> list[str]:
    """wrk loading ``POST {url}/predict`` with ``script`` from one thread for ``seconds``, on ``cpu``."""
    return _pinned([wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                    f"{url}/predict"], cpu)


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _served_artifact(tmp: Path) -> Path:
    """The artifact ``make serve`` would serve, or one built with the fast profile in ``tmp``."""
    from helpers.app import service

    artifact = service.default_artifact()
    if not artifact.exists():  # build one with the fast profile rather than benchmark nothing
        from helpers.app.pipeline import build

        test = load_settings("test", products=str(tmp / "products"), reports=str(tmp / "reports"),
                             warehouse_path=str(tmp / "warehouse.duckdb"))
        build(test)
        artifact = test.products / "model" / "forecast_artifact.json"
    return artifact


#: ``python -m helpers.app.service`` flags that turn every optional per-request feature off.
FEATURES_OFF = ("--no-forecast-log", "--no-metrics")


def bench_metrics_recording(repeat: int, number: int = 100_000) -> dict:
    """Per-request cost of the metrics of one ordinary ``POST /predict`` (a count by route and
    status, a latency observation, a count and days by model), in microseconds: the service's
    :class:`helpers.app.metrics.ServiceMetrics` against prometheus-client's own ``Counter`` and
    ``Histogram`` with their label children bound once, and the two clock reads alone."""
    import timeit

    from prometheus_client import CollectorRegistry, Counter, Histogram

    from helpers.app.metrics import BUCKETS, ServiceMetrics

    clock = time.perf_counter
    plain = ServiceMetrics(lambda: None, Path(os.devnull))
    registry = CollectorRegistry()
    requests = Counter("http_requests", "", ["route", "status"], registry=registry).labels("/predict", "200")
    latency = Histogram("http_request_duration_seconds", "", ["route"], buckets=BUCKETS,
                        registry=registry).labels("/predict")
    predictions = Counter("forecast_predictions", "", ["model"], registry=registry).labels("ensemble")
    days = Counter("forecast_days_served", "", ["model"], registry=registry).labels("ensemble")

    def service_metrics() -> None:
        started = clock()
        plain.served("ensemble", 14)
        plain.answered(started)

    def client_children() -> None:
        started = clock()
        predictions.inc()
        days.inc(14)
        requests.inc()
        latency.observe(clock() - started)

    def clock_only() -> None:
        started = clock()
        clock() - started

    def per_call_us(fn: Callable[[], None]) -> float:
        return min(timeit.repeat(fn, number=number, repeat=max(repeat, 3))) / number * 1e6

    return {"service_metrics_us": per_call_us(service_metrics), "prometheus_client_children_us":
            per_call_us(client_children), "clock_reads_only_us": per_call_us(clock_only), "calls": number}


def bench_service(settings, repeat: int, tmp: Path, seconds: int = 20, connections: int = 16) -> dict:
    import asyncio
    import shutil

    import orjson

    from helpers.app import service

    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("bench service: `wrk` is not installed; `make bench` installs it (Debian package wrk)")
    artifact = _served_artifact(tmp)
    forecasts = service.Forecasts.load(artifact)
    first = pd.Timestamp(forecasts.window[0])
    request = {"start_date": first.date().isoformat(), "end_date": (first + pd.Timedelta(days=13)).date().isoformat(),
               "model": "ensemble" if "ensemble" in forecasts.models else forecasts.selected,
               "include_confidence": True}
    body = orjson.dumps(request)

    # In process: the ASGI app alone (startup run once by hand), without the forecast log and
    # with it queueing every answer (the request's part of logging; the flusher is not running).
    from helpers.operate.forecast_log import ForecastLogWriter

    app = service.create_app(artifact)
    app.state.forecasts, app.state.log = forecasts, None
    asyncio.set_event_loop(asyncio.new_event_loop())
    status, payload = _asgi_call(app, body)
    assert status == 200, payload
    in_process = timed(lambda: _asgi_call(app, body), max(repeat, 1) * 700)
    app.direct = False  # the same request through FastAPI's stack (the route, pydantic), as before the direct path
    in_process_fastapi = timed(lambda: _asgi_call(app, body), max(repeat, 1) * 700)
    app.direct = True
    app.metrics, metrics = None, app.metrics
    in_process_unmetered = timed(lambda: _asgi_call(app, body), max(repeat, 1) * 700)
    app.metrics = metrics
    app.state.log = ForecastLogWriter(tmp / "in_process_log")
    in_process_logged = timed(lambda: _asgi_call(app, body), max(repeat, 1) * 700)
    queued = app.state.log.pending

    # Over loopback: the real server in its own process, loaded by wrk from another;
    # `make serve` (uvloop + httptools) against uvicorn's pure-Python defaults (asyncio + h11).
    script = tmp / "predict.lua"
    script.write_text(WRK_SCRIPT % body.decode())
    serve = [sys.executable, "-m", "helpers.app.service", "--artifact", str(artifact)]
    plain = [sys.executable, "-m", "uvicorn", "--factory", "helpers.app.service:create_app", "--loop", "asyncio",
             "--http", "h11", "--log-level", "warning", "--no-access-log"]
    # Every run logs into a folder of this run's own, never the settings' forecast_log_dir.
    log_dir = tmp / "forecast_log"
    env = {"HELPERS_FORECAST_LOG_DIR": str(log_dir)}
    runs = {}
    variants = {"make_serve_no_log": [*serve, "--no-forecast-log"], "make_serve": serve,
                "make_serve_no_metrics": [*serve, "--no-metrics"], "make_serve_bare": [*serve, *FEATURES_OFF],
                "uvicorn_asyncio_h11": plain}
    for name, command in variants.items():
        # with metrics on, scraped 3 times as often as ops/prometheus/prometheus.yml's 15 s
        scrape = 5.0 if name in ("make_serve", "make_serve_no_log") else None
        runs[name] = _load_server(command, str(artifact), body, payload, wrk, script, seconds, connections, env,
                                  scrape_seconds=scrape)
        if name == "make_serve":  # what the log holds once the service has stopped (it closes its file)
            logged = _logged_rows(log_dir)
            shutil.rmtree(log_dir, ignore_errors=True)
    loaded, unlogged, unmetered = runs["make_serve"], runs["make_serve_no_log"], runs["make_serve_no_metrics"]
    served_rows = (loaded["requests"] + 1) * len(request_days(request))  # + the check; warm-up below
    keys = ("requests_per_s", "p50_s", "p99_s", "server_cpu_per_request_s", "socket_errors", "non_2xx")
    return {
        "request": request, "artifact": str(artifact),
        "server": "uvicorn, 1 worker, uvloop + httptools (each response in one write), POST /predict answered "
                  "before FastAPI's stack from serialised answers kept per day range; make_serve: forecast log and "
                  "metrics on",
        "load": f"wrk, 1 thread, {connections} connections, {seconds} s, loopback"
                + (", wrk and the server pinned to a CPU each (taskset)" if _pinning()[0] is not None else ""),
        "wrk": {name: {k: v for k, v in run.items() if k != "output"} for name, run in runs.items()},
        "in_process_asgi": in_process,
        "in_process_asgi_through_fastapi": in_process_fastapi,
        "in_process_asgi_queueing_the_log": {**in_process_logged, "queued": queued},
        "in_process_asgi_without_metrics": in_process_unmetered,
        "metrics_recording": bench_metrics_recording(repeat),
        "forecast_log": {
            "with_log": {k: loaded[k] for k in keys}, "without_log": {k: unlogged[k] for k in keys},
            "requests_per_s_change": loaded["requests_per_s"] / unlogged["requests_per_s"] - 1,
            "p99_change_s": loaded["p99_s"] - unlogged["p99_s"],
            "server_cpu_per_request_change": (loaded["server_cpu_per_request_s"]
                                              / unlogged["server_cpu_per_request_s"] - 1),
            # the log also holds the 2 s warm-up's requests: at least every measured request is there
            "rows_logged": logged, "rows_of_measured_requests": served_rows,
        },
        "metrics": {
            "with_metrics": {k: loaded[k] for k in keys}, "without_metrics": {k: unmetered[k] for k in keys},
            "requests_per_s_change": loaded["requests_per_s"] / unmetered["requests_per_s"] - 1,
            "p99_change_s": loaded["p99_s"] - unmetered["p99_s"],
            "server_cpu_per_request_change": (loaded["server_cpu_per_request_s"]
                                              / unmetered["server_cpu_per_request_s"] - 1),
        },
        "target_met": bool(_meets_target(loaded)),
        "target_met_without_log": bool(_meets_target(unlogged)),
        "target_met_without_metrics": bool(_meets_target(unmetered)),
        "target_met_bare": bool(_meets_target(runs["make_serve_bare"])),
        "wrk_output": loaded["output"],
    }


def _meets_target(run: dict) -> bool:
    """The endpoint's bar: at least 5,000 requests/s with p99 under 5 ms, and no error."""
    return run["requests_per_s"] >= 5000 and run["p99_s"] < 0.005 and run["socket_errors"] == 0 and run["non_2xx"] == 0


def request_days(request: dict) -> list[str]:
    """The days a /predict request asks for."""
    days = pd.date_range(request["start_date"], request["end_date"], freq="1D")
    return [d.date().isoformat() for d in days]


def _logged_rows(log_dir: Path) -> dict[str, int]:
    """Rows in the forecast log's files by state (each line is one request's steps): ``jsonl``
    closed by the service, ``open`` left open (a fold takes those over once the service is gone)."""
    import orjson

    return {state: sum(len(orjson.loads(line)["horizon_step"]) for path in log_dir.glob(f"*.{state}")
                       for line in path.read_bytes().splitlines()) for state in ("jsonl", "open")}


def _memory_kb(pid: int) -> dict[str, int]:
    """Resident (``VmRSS``) and peak resident (``VmHWM``) memory of a process, kB, from /proc."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: int(line.split()[1]) for line in lines for key in ("VmRSS", "VmHWM") if line.startswith(key + ":")}


def _post_raw(port: int, body: bytes, chunked: bool) -> tuple[int, float]:
    """POST ``body`` to /predict over a raw socket, reading the answer while still sending (as a
    client that does not wait for ``100 Continue``); the status and the seconds to it."""
    import socket
    import threading

    start = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = f"POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"

    def write() -> None:
        try:
            sock.sendall(head.encode())
            view = memoryview(body)
            for i in range(0, len(body), 1 << 16):
                piece = view[i:i + (1 << 16)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed: the rest is not read
            pass

    writer = threading.Thread(target=write)
    writer.start()
    answer = b""
    try:
        while b"\r\n" not in answer:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    seconds = time.perf_counter() - start
    writer.join()
    sock.close()
    return (int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0), seconds


def bench_service_reload(settings, repeat: int, tmp: Path, seconds: int = int(os.environ.get("BENCH_SECONDS", 20)), connections: int = 16,
                         switch_every: float = float(os.environ.get("BENCH_SWITCH_SECONDS", 4.0)),
                         poll: float = float(os.environ.get("BENCH_POLL_SECONDS", 1.0))) -> dict:
    """``make serve`` in registry mode under wrk, with and without the champion switching
    between two versions every ``switch_every`` seconds (promote, then rollback, ...), the
    registry checked every ``poll`` seconds (``BENCH_SWITCH_SECONDS``, ``BENCH_POLL_SECONDS``)."""
    import shutil
    import subprocess
    import threading
    import urllib.request

    import orjson

    from helpers.app import service
    from helpers.lifecycle.registry import Registry
    from helpers.lifecycle.tracking import Store

    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("bench service_reload: `wrk` is not installed; `make bench` installs it (Debian package wrk)")
    artifact = _served_artifact(tmp)
    payload = json.loads(artifact.read_text())
    second = {**payload, "created_utc": payload["created_utc"] + "+reload", "data_sha256": "0" * 64}
    (tmp / "second.json").write_text(json.dumps(second))
    store = Store(f"sqlite:///{tmp / 'mlflow' / 'mlflow.db'}", f"sqlite:///{tmp / 'mlflow' / 'mlflow.db'}",
                  settings.mlflow_experiment, tmp / "mlflow" / "artifacts")
    registry = Registry(store, settings.registry_model)
    first_version = registry.register(artifact, alias="champion").version
    second_version = registry.register(tmp / "second.json").version

    forecasts = service.Forecasts.load(artifact)
    start = pd.Timestamp(forecasts.window[0])
    body = orjson.dumps({"start_date": start.date().isoformat(),
                         "end_date": (start + pd.Timedelta(days=13)).date().isoformat(),
                         "model": "ensemble" if "ensemble" in forecasts.models else forecasts.selected})
    script = tmp / "predict.lua"
    script.write_text(WRK_SCRIPT % body.decode())
    serve = [sys.executable, "-m", "helpers.app.service"]
    env = {"HELPERS_ARTIFACT": "", "HELPERS_MLFLOW_DIR": str(tmp / "mlflow"),
           "HELPERS_REGISTRY_POLL_SECONDS": str(poll), "HELPERS_FORECAST_LOG_DIR": str(tmp / "forecast_log"),
           "MLFLOW_TRACKING_URI": "", "MLFLOW_REGISTRY_URI": ""}

    server_cpu, wrk_cpu = _pinning()

    def run(switch: bool) -> dict:
        with _serving(_pinned(serve, server_cpu), env) as (url, server):
            check = urllib.request.Request(f"{url}/predict", data=body, headers={"Content-Type": "application/json"})
            assert orjson.loads(urllib.request.urlopen(check, timeout=5).read())["last_updated"] in (
                payload["created_utc"], second["created_utc"])
            subprocess.run(_wrk_command(wrk, script, url, connections, 2, wrk_cpu), capture_output=True,
                           check=True)  # warm-up
            stop, switches = threading.Event(), []

            def switcher() -> None:
                while not stop.wait(switch_every):
                    champion = registry.get("champion").version
                    moved = registry.promote(second_version) if champion == first_version else registry.rollback()
                    switches.append(moved.version)

            thread = threading.Thread(target=switcher, daemon=True)
            if switch:
                thread.start()
            done = subprocess.run(_wrk_command(wrk, script, url, connections, seconds, wrk_cpu), capture_output=True,
                                  text=True, check=True)
            stop.set()
            if switch:
                thread.join(30)
            time.sleep(2 * poll)  # the last switch served before the server stops
            health = orjson.loads(urllib.request.urlopen(f"{url}/health", timeout=5).read())
        said = server.stdout.read().decode()
        result = parse_wrk(done.stdout)
        return {**result, "switches": len(switches), "switches_served": said.count("model source: now serving"),
                "refusals": said.count("model source: refused"), "served_version_at_end": health["served_version"],
                "target_met": bool(_meets_target(result)), "output": done.stdout}

    runs = {"switching": run(True), "no_switch": run(False)}
    return {"artifact": str(artifact), "versions": [first_version, second_version],
            "server": "python -m helpers.app.service (make serve) in registry mode, one uvicorn worker, forecast log "
                      "and metrics on",
            "load": f"wrk, 1 thread, {connections} connections, {seconds} s, loopback"
                    + (", wrk and the server pinned to a CPU each (taskset)" if server_cpu is not None else ""),
            "poll_seconds": poll, "switch_every_s": switch_every,
            "wrk": {name: {k: v for k, v in r.items() if k != "output"} for name, r in runs.items()},
            "wrk_output": runs["switching"]["output"]}


def bench_service_memory(settings, repeat: int, tmp: Path, clients: int = 8, bodies: int = 5,
                         size: int = 10 << 20) -> dict:
    """Memory of ``make serve`` under load with large bodies: ``clients`` connections each send
    ``bodies`` bodies of ``size`` bytes (half with Content-Length, half chunked) while small
    /predict requests keep coming; then one 300 MB body (the size that took the service to
    1.3 GB). Beside it, the same server with the limit raised to 1 GiB (what it did before the
    limit) takes one large body per connection."""
    import http.client
    import urllib.parse
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    import orjson

    from helpers.app import service

    artifact = _served_artifact(tmp)
    first = service.Forecasts.load(artifact).window[0]
    small = orjson.dumps({"start_date": first, "end_date": first})
    large = b'{"start_date": "' + b"9" * size + b'"}'

    def run(limit: int | None, per_client: int, huge: bool) -> dict:
        env = {"HELPERS_ARTIFACT": str(artifact)}
        if limit is not None:
            env["HELPERS_MAX_REQUEST_BYTES"] = str(limit)
        serve = [sys.executable, "-m", "helpers.app.service", "--artifact", str(artifact)]
        with _serving(serve, env) as (url, server):
            port = urllib.parse.urlsplit(url).port
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

            def predict() -> float:
                start = time.perf_counter()
                connection.request("POST", "/predict", small, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                assert response.status == 200, response.status
                return time.perf_counter() - start

            idle = [predict() for _ in range(200)]
            before = _memory_kb(server.pid)
            jobs = [(c + b) % 2 == 1 for c in range(clients) for b in range(per_client)]
            busy = []
            start = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                futures = [pool.submit(_post_raw, port, large, chunked) for chunked in jobs]
                while not all(future.done() for future in futures):
                    busy.append(predict())
                answers = [future.result() for future in futures]
            load_seconds = time.perf_counter() - start
            after_load = _memory_kb(server.pid)
            result = {
                "max_request_bytes": limit or settings.max_request_bytes,
                "large_bodies": {"count": len(jobs), "bytes_each": len(large), "sent_concurrently_by": clients,
                                 "statuses": dict(Counter(str(status) for status, _ in answers)),
                                 "median_s_to_answer": statistics.median(s for _, s in answers),
                                 "all_s": load_seconds},
                "small_requests": {"idle_p50_s": statistics.median(idle),
                                   "during_load_p50_s": statistics.median(busy) if busy else None,
                                   "during_load_max_s": max(busy) if busy else None,
                                   "during_load_count_all_200": len(busy)},
                "memory_kb": {"before": before, "after_load": after_load,
                              "peak_growth": after_load["VmHWM"] - before["VmHWM"]},
            }
            if huge:
                status, seconds = _post_raw(port, b"9" * (300 << 20), chunked=False)
                after = _memory_kb(server.pid)
                result["body_300_MB"] = {"status": status, "s_to_answer": seconds,
                                         "peak_growth_kb": after["VmHWM"] - after_load["VmHWM"]}
            connection.close()
        return result

    return {"artifact": str(artifact), "server": "python -m helpers.app.service (make serve), one uvicorn worker",
            "with_limit": run(None, bodies, huge=True),
            "alternative_limit_1_GiB": run(1 << 30, 1, huge=False)}


def write_repeated_file(source: str | Path, times: int, path: Path) -> int:
    """``source`` repeated ``times`` times, each copy shifted by the data's span so the copies
    continue one grid (no duplicate or missing timestamp), written as plain CSV; its rows.
    The copies are centred on the original, so 290 years stay inside pandas' 1677-2262 range."""
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    ts = pd.to_datetime(frame["timestamp"])
    span = ts.iloc[-1] - ts.iloc[0] + (ts.iloc[1] - ts.iloc[0])
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(",".join(frame.columns) + "\n")
        for k in range(-(times // 2), times - times // 2):
            copy = frame.assign(timestamp=(ts + k * span).dt.strftime("%Y-%m-%d %H:%M:%S"))
            copy.to_csv(handle, header=False, index=False, lineterminator="\n")
    return len(frame) * times


def measure_child(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Wall time and peak resident memory (``ru_maxrss`` of this child alone, MB) of one child
    process; its output goes to temporary files so nothing but ``wait4`` reaps it."""
    import subprocess

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                "exit": child.returncode, "stdout_tail": out.read().decode()[-400:],
                "stderr_tail": err.read().decode()[-400:]}

#: Multiples of the default file that ``ingest_memory`` loads (``--ingest-multiples`` to change).
INGEST_MULTIPLES = (1, 10, 50)
#: The whole-file path in the same run: one chunk as large as any file (read_source + validate).
WHOLE_FILE = ("import sys; import helpers.data.quality as q; q.CHUNK_ROWS = 10**12; "
              "from helpers.data.ingest import main; sys.exit(main(sys.argv[1:]))")


def bench_ingest_memory(settings, repeat: int, tmp: Path, multiples: tuple[int, ...] = INGEST_MULTIPLES) -> dict:
    """Wall time and peak memory of ``python -m helpers.data.ingest`` (a child process each, a
    fresh DuckDB file each) on the default file repeated 1x, 10x, 50x with shifted timestamps,
    chunked (``CHUNK_ROWS``) and, beside it, as one chunk (the whole-file path it replaced)."""
    from helpers.data import quality

    env = {**os.environ, "PLOOMBER_STATS_ENABLED": "false"}
    results: dict[str, Any] = {"chunk_rows": quality.CHUNK_ROWS, "runs": {}}
    for times in multiples:
        path = tmp / f"elecdemand_{times}x.csv"
        rows = write_repeated_file(settings.source_file, times, path)
        run = {"rows": rows, "file_mb": round(path.stat().st_size / 1e6, 1)}
        for name, head in (("chunked", ["-m", "helpers.data.ingest"]), ("alternative_whole_file", ["-c", WHOLE_FILE])):
            warehouse = tmp / f"{name}_{times}x.duckdb"
            run[name] = measure_child([sys.executable, *head, "--file", str(path), "--series-id", f"bench_{times}x",
                                       "--warehouse", str(warehouse)], env)
            warehouse.unlink(missing_ok=True)
            print(f"  {times}x ({rows} rows) {name}: {run[name]['seconds']} s, peak {run[name]['peak_rss_mb']} MB",
                  flush=True)
        path.unlink()
        results["runs"][f"{times}x"] = run
    return results


def bench_replay(settings, repeat: int, tmp: Path) -> dict:
    """``make replay`` on the default data (fast profile's comparison, as the make target), then
    one more cycle with nothing new, as `make operate` runs it (a fresh interpreter)."""
    import subprocess

    from helpers.app import replay

    previous = dict(os.environ)
    os.environ["HELPERS_PROFILE"] = "test"
    try:
        start = time.perf_counter()
        result = replay.replay(load_settings().source_file, tmp / "replay", say=lambda line: None)
        total = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(previous)
    cycles = [row["seconds"] for row in result.cycles]
    env = {**os.environ, **replay.replay_environment(tmp / "replay", settings.source_file, settings),
           "HELPERS_PROFILE": "test", "PLOOMBER_STATS_ENABLED": "false"}
    skipped = []
    for _ in range(max(repeat, 3)):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "helpers.app.cycle"], env=env, capture_output=True, text=True,
                              timeout=120)
        skipped.append(time.perf_counter() - start)
        assert done.returncode == 0 and "skipped" in done.stdout, done.stdout + done.stderr
    return {
        "replay_total_s": total, "train_s": result.seconds["train"], "cycles": len(cycles),
        "cycle_median_s": statistics.median(cycles[:-1]), "cycle_max_s": max(cycles[:-1]),
        "last_cycle_with_pages_s": cycles[-1],
        "skipped_cycle_median_s": statistics.median(skipped),
        "note": "cycles without the monitoring pages; the last one renders them. A skipped cycle is timed as "
                "`python -m helpers.app.cycle` with nothing new (interpreter start included).",
    }


def bench_daily_cycles(settings, repeat: int, tmp: Path) -> dict:
    """Issue 12's cycle as cron runs it: the default data less its last week replayed, then one
    `make operate` (``python -m helpers.app.cycle``, a fresh interpreter) per held-out day in the
    same folder, each rendering the monitoring pages (bench/cycle_pages.py, ``in_sequence``)."""
    import cycle_pages  # bench/cycle_pages.py, beside this file

    previous = dict(os.environ)
    cycle_pages.use_test_profile()  # for this section only: the later ones (make_test) get the environment back
    try:
        base = tmp / "cycle-base"
        cycle_pages.make_base(base, hold_days=7)
        return cycle_pages.in_sequence(base, tmp)
    finally:
        os.environ.clear()
        os.environ.update(previous)


BENCHMARKS = {
    "validation": lambda settings, repeat, tmp: bench_validation(settings, repeat),
    "ingest_and_sql": bench_ingest,
    "pipeline": targets.bench_pipeline,
    "gc_policy": targets.bench_gc_policy,
    "comparison": targets.bench_comparison,
    "cv_incremental": targets.bench_cv_incremental,
    "script_ratio": targets.bench_script_ratio,
    "growth": targets.bench_growth,
    "models": bench_models,
    "arima_grid": bench_arima_grid,
    "intervals": bench_intervals,
    "ab": bench_ab,
    "service": bench_service,
    "service_memory": bench_service_memory,
    "service_reload": bench_service_reload,
    "ingest_memory": bench_ingest_memory,
    "replay": bench_replay,
    "daily_cycles": bench_daily_cycles,
    "make_test": targets.bench_make_test,
}


def write_results(results: dict, output: Path) -> None:
    """``results`` with the targets table of what they hold, written to ``output`` at once."""
    results["targets"] = targets.targets(results)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_text(json.dumps(results, indent=2))
    partial.replace(output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    parser.add_argument("--ingest-multiples", default=",".join(map(str, INGEST_MULTIPLES)),
                        help="multiples of the default file for ingest_memory, e.g. 1,10,50,290")
    parser.add_argument("--table", action="store_true",
                        help="print the targets table of the --output file and run nothing")
    args = parser.parse_args(argv)
    if args.table:
        try:
            results = json.loads(args.output.read_text())
        except (OSError, ValueError) as exc:
            print(f"error: cannot read the results {args.output} ({exc}); run `make bench` first, or name the file "
                  "with --output", file=sys.stderr)
            return 2
        print(targets.markdown_table(targets.targets(results)))
        return 0
    multiples = tuple(int(m) for m in args.ingest_multiples.split(","))
    BENCHMARKS["ingest_memory"] = lambda settings, repeat, tmp: bench_ingest_memory(settings, repeat, tmp, multiples)
    settings = load_settings()
    previous = json.loads(args.output.read_text()) if args.only and args.output.exists() else {}
    results = {
        **previous,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
        "git_commit": git_commit(),
        "packages": package_versions(),
        "created_utc": pd.Timestamp.now("UTC").isoformat(timespec="seconds"),
    }
    try:
        targets.check_inputs()
    except targets.BenchInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = []
    with tempfile.TemporaryDirectory(prefix="bench-shared-") as shared:
        targets.STATE.update(shared=Path(shared), results=results)
        for name in args.only or BENCHMARKS:
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
                print(f"running {name} ...", flush=True)
                try:
                    results[name] = BENCHMARKS[name](settings, args.repeat, Path(tmp))
                except Exception as exc:  # the other sections still run; this one says why it failed
                    if not isinstance(exc, targets.SectionFailed):  # a bug in the bench or the code: its traceback
                        traceback.print_exc()
                    text = str(exc) if isinstance(exc, targets.SectionFailed) else f"{type(exc).__name__}: {exc}"
                    results[name] = {"error": text, "measured_utc": targets.now()}
                    failed.append(name)
                    print(f"{name} failed: {text}", file=sys.stderr)
            write_results(results, args.output)  # each section kept as soon as it has run
        targets.STATE.clear()
    write_results(results, args.output)
    print(json.dumps({k: v for k, v in results.items() if k not in ("packages", "machine", "targets")}, indent=2))
    print(targets.markdown_table(results["targets"]))
    if failed:
        print(f"failed sections: {', '.join(failed)} (their error is in {args.output})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
