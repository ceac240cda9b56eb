"""Benchmark harness: `make bench` times the pipeline's stages and writes JSON results.

Each measurement is repeated and reported as its median (with min and max), next to
the obvious alternative measured in the same run:

- validation of the default file (the data-quality checks) against plain parsing;
- ingest into DuckDB against the same ingest through the Snowflake code path (fakesnow);
- rolling mean / lags / week-over-week change in SQL window functions against pandas;
- the whole pipeline (fast profile, fresh folder) with per-task times from Ploomber;
- the full-profile model comparison: seconds per model per fold, and pmdarima's
  auto_arima against statsforecast's AutoARIMA on the same five daily folds;
- A/B conversion analysis on the same two-arm data (10,000 users per arm): the exact
  closed-form P(B > A), the whole closed-form analysis, and PyMC NUTS (4 chains x 1,000
  draws, warm), with the largest difference between the two.

``--only`` runs some sections and keeps the others' last results in the output file.

Later work adds its own sections to ``BENCHMARKS``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")

import pandas as pd  # noqa: E402

from helpers.config import load_settings  # noqa: E402
from helpers.ingest import ingest_file  # noqa: E402
from helpers.provenance import git_commit, package_versions  # noqa: E402
from helpers.quality import SeriesSpec, read_source, validate  # noqa: E402
from helpers.series import window_features  # noqa: E402
from helpers.warehouse import Warehouse  # noqa: E402


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


def bench_pipeline(tmp: Path) -> dict:
    from helpers.pipeline import build

    settings = load_settings("test", products=str(tmp / "products"), reports=str(tmp / "reports"),
                             warehouse_path=str(tmp / "pipeline.duckdb"))
    start = time.perf_counter()
    first = build(settings)
    total = time.perf_counter() - start
    start = time.perf_counter()
    second = build(settings)
    noop = time.perf_counter() - start
    return {
        "fresh_build_total_s": total,
        "tasks_s": dict(zip(first["task"], first["seconds"])),
        "incremental_build_nothing_changed_s": noop,
        "tasks_run_on_second_build": int(second["ran"].sum()),
    }


def bench_models(settings, repeat: int, tmp: Path) -> dict:
    """Full-profile daily and hourly comparisons: time per model per fold, and the two ARIMA
    engines (pmdarima's auto_arima against statsforecast's AutoARIMA) on the same folds."""
    import numpy as np
    import pmdarima as pm

    from helpers import backtest as bt
    from helpers import comparison
    from helpers.forecasting import Forecaster, interval_columns
    from helpers.series import load_series

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
    from helpers.forecasting import model_catalog

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


def bench_ab(settings, repeat: int, tmp: Path) -> dict:
    import numpy as np

    from helpers import abtest as ab

    rng = np.random.default_rng(settings.ab_seed)
    users = 10_000
    conversions = rng.binomial(users, [0.10, 0.11])
    summary = pd.DataFrame({"variant": ["control", "treatment"], "users": users, "conversions": conversions})
    (a_c, b_c), (a_v, b_v) = ab.beta_parameters(summary)[["a", "b"]].to_numpy()
    config = ab.ABConfig(draws=settings.ab_draws, seed=settings.ab_seed, pymc_draws=1000, pymc_chains=4)
    exact_repeat = max(repeat, 1) * 200
    ab.pymc_conversion(summary, config)  # compile and warm up once
    idata = {}

    def nuts():
        idata["last"] = ab.pymc_conversion(summary, config)

    results = {
        "users_per_arm": users, "conversions": [int(c) for c in conversions],
        "closed_form_exact_p_beat": timed(lambda: ab.prob_beats(a_c, b_c, a_v, b_v), exact_repeat),
        "closed_form_full_analysis": timed(lambda: ab.conversion_analysis(summary, config), repeat),
        "pymc_nuts_4x1000_warm": timed(nuts, min(repeat, 3)),
    }
    check = ab.cross_check(summary, idata["last"], config)
    results["agreement"] = {"max_abs_difference": float(check["difference"].abs().max()),
                            "all_within_4_mcse": bool(check["agree"].all()),
                            "p_beat_closed_form": float(check["closed form"].iloc[-1]),
                            "p_beat_pymc": float(check["PyMC"].iloc[-1])}
    results["speedup_exact_vs_pymc"] = (results["pymc_nuts_4x1000_warm"]["median_s"]
                                        / results["closed_form_exact_p_beat"]["median_s"])
    return results


BENCHMARKS = {
    "validation": lambda settings, repeat, tmp: bench_validation(settings, repeat),
    "ingest_and_sql": bench_ingest,
    "pipeline": lambda settings, repeat, tmp: bench_pipeline(tmp),
    "models": bench_models,
    "ab": bench_ab,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    args = parser.parse_args(argv)
    settings = load_settings()
    previous = json.loads(args.output.read_text()) if args.only and args.output.exists() else {}
    results = {
        **previous,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
        "git_commit": git_commit(),
        "packages": package_versions(),
        "created_utc": pd.Timestamp.now("UTC").isoformat(timespec="seconds"),
    }
    for name in args.only or BENCHMARKS:
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            print(f"running {name} ...", flush=True)
            results[name] = BENCHMARKS[name](settings, args.repeat, Path(tmp))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k not in ("packages", "machine")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
