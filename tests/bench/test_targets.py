"""bench/targets.py: the 4x series builder, the parsers of what the measured commands print, and
the targets table."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pandas as pd
import pytest

from helpers.core.settings import load_settings
from helpers.data.calendar import workday_flags
from helpers.forecast.comparison import cache_summary
from tests.bench import BENCH

import targets  # noqa: E402  (bench/targets.py; tests/bench/__init__.py puts bench/ on sys.path)


@pytest.fixture(scope="module")
def year() -> pd.DataFrame:
    return pd.read_csv(load_settings().source_file, dtype=str, keep_default_na=False)


def test_four_years_continue_one_grid_each_with_its_own_calendar(year):
    four = targets.repeat_years(year, 4, "AU", "VIC")

    stamps = pd.to_datetime(four["timestamp"])
    assert len(four) == 4 * len(year)
    assert (stamps.diff().dropna() == pd.Timedelta("30min")).all()  # no gap, no duplicate
    assert stamps.iloc[0] == pd.Timestamp("2014-01-01") and stamps.iloc[-1] == pd.Timestamp("2017-12-30 23:30")
    for column in ("demand", "temperature"):
        assert (four[column].to_numpy() == pd.concat([year[column]] * 4).to_numpy()).all()
    assert (four["workday"].astype(float).to_numpy() == workday_flags(stamps, "AU", "VIC").to_numpy()).all()
    by_day = four.assign(day=stamps.dt.date.astype(str)).groupby("day")["workday"].first()
    # 2015-11-03 (Melbourne Cup) and 2015-01-03 (a Saturday) were copied from 2014 work days
    assert year.loc[year["timestamp"].str.startswith("2014-11-03"), "workday"].eq("1").all()
    assert year.loc[year["timestamp"].str.startswith("2014-01-03"), "workday"].eq("1").all()
    assert by_day["2015-11-03"] == "0" and by_day["2015-01-03"] == "0" and by_day["2015-11-04"] == "1"


def test_one_copy_is_the_default_year_and_no_calendar_keeps_the_flags(year):
    assert targets.repeat_years(year, 1, "AU", "VIC").equals(year)  # its flags agree with the calendar
    copied = targets.repeat_years(year, 2, "", None)
    assert (copied["workday"].to_numpy() == pd.concat([year["workday"]] * 2).to_numpy()).all()


def test_the_task_table_the_build_prints_is_read_back():
    table = pd.DataFrame({"task": ["ingest", "bayesian_ab-checkout_flow", "reports"], "ran": [True, False, True],
                          "seconds": [0.374173, 0.0, 12.5]})
    output = f"note: something\n{table.to_string(index=False)}\n2 of 3 tasks ran; reports in r/index.html\n"

    assert targets.parse_task_table(output) == {"ingest": {"ran": True, "seconds": 0.374173},
                                                "bayesian_ab-checkout_flow": {"ran": False, "seconds": 0.0},
                                                "reports": {"ran": True, "seconds": 12.5}}


def test_the_comparison_notebooks_cache_summary_is_counted():
    def run(grain: str, cached: list[bool]) -> SimpleNamespace:
        return SimpleNamespace(config=SimpleNamespace(grain=grain), timings=pd.DataFrame({"cached": cached}))

    text = f"some output\n{cache_summary(run('daily', [True] * 140 + [False] * 10), run('hourly', [True] * 6))}"

    assert targets.cache_counts(text) == {"daily": {"run": 10, "total": 150, "cached": 140},
                                          "hourly": {"run": 0, "total": 6, "cached": 6}}


@pytest.mark.parametrize(("output", "counts", "seconds"), [
    ("...\n===== 850 passed, 3 skipped, 2 warnings in 277.12s (0:04:37) =====\n", {"passed": 850, "skipped": 3},
     277.12),
    ("x\n1 failed, 10 passed, 2 errors in 3.21s\n", {"failed": 1, "passed": 10, "error": 2}, 3.21),
    ("make: *** [Makefile:70: test] Error 2\n", {}, None),
])
def test_pytest_counts_come_from_its_summary_line(output, counts, seconds):
    parsed = targets.pytest_counts(output)
    assert parsed["counts"] == counts and parsed["pytest_s"] == seconds


def test_a_bench_variable_out_of_range_names_itself(monkeypatch):
    monkeypatch.setenv("BENCH_PIPELINE_RUNS", "0")
    with pytest.raises(targets.BenchInputError, match="BENCH_PIPELINE_RUNS must be a whole number of at least 1, "
                                                      "got 0"):
        targets.check_inputs()
    monkeypatch.setenv("BENCH_PIPELINE_RUNS", "2")
    monkeypatch.setenv("BENCH_PROFILE", "nightly")
    with pytest.raises(targets.BenchInputError, match="BENCH_PROFILE must be full or a profile"):
        targets.check_inputs()
    monkeypatch.setenv("BENCH_PROFILE", "test")
    targets.check_inputs()
    assert targets.bench_profile() == "test" and targets.env_int("BENCH_PIPELINE_RUNS", 3) == 2


def test_a_command_that_fails_or_overruns_is_stopped_and_said():
    with pytest.raises(targets.SectionFailed, match=r"exited 3: out"):
        targets.run_command([sys.executable, "-c", "import sys; print('out'); sys.exit(3)"], {}, 30, "BENCH_X")
    with pytest.raises(targets.SectionFailed, match="ran more than 1 s and was stopped; set BENCH_X"):
        targets.run_command([sys.executable, "-c", "import time; time.sleep(30)"], {}, 1, "BENCH_X")
    seconds, output, code = targets.run_command(
        [sys.executable, "-c", "import os; print(os.environ.get('GONE'), os.environ['SET'])"],
        {"GONE": None, "SET": "yes"}, 30, "BENCH_X")
    assert output.strip() == "None yes" and code == 0 and seconds > 0


def results(**sections) -> dict:
    base = {
        "pipeline": {"full": {"profile": "full", "median_s": 75.0}, "fast": {"profile": "test", "median_s": 31.0},
                     "noop_rebuild": {"command": {"median_s": 9.5}, "in_process": {"median_s": 0.8}}},
        "comparison": {"profile": "full", "daily": {"all_cores": {"median_s": 38.0}}},
        "script_ratio": {"profile": "full", "ratio": 1.45},
        "make_test": {"seconds": 280.0, "exit": 0, "counts": {"passed": 900}},
        "growth": {"comparison_growth": 5.2, "cycle_growth": 1.8},
        "cv_incremental": {"second_build_s": 40.0, "model_comparison_s": 12.0},
        "daily_cycles": {"first_cycle_s": 10.4, "first_cycle": "retrained", "daily": {"median_s": 6.5}},
        "replay": {"replay_total_s": 71.0},
    }
    base.update(sections)
    return base


def by_target(rows: list[dict]) -> dict[str, dict]:
    return {row["target"]: row for row in rows}


def test_the_targets_table_marks_each_target_met_or_not():
    rows = by_target(targets.targets(results()))

    assert {t: r["met"] for t, r in rows.items()} == {
        "full-profile make run, fresh folder": "yes", "full-profile make run (stretch)": "no",
        "fast-profile make run, fresh folder": "no", "no-op rebuild, the command": "no",
        "no-op rebuild, in process": "yes", "daily model comparison, all models and folds": "yes",
        "ARIMA order grid against pmdarima": "not run", "pipeline / plain script": "no", "make test": "yes",
        "growth of the daily comparison, 4x series": "no limit", "growth of an operating cycle, 4x series": "no limit",
        "second build after one model's setting changed": "no limit",
        "operating cycle as make operate runs it, daily, rule not due": "yes",
        "operating cycle as make operate runs it, retraining due": "no", "make replay on the default data": "yes"}
    assert rows["full-profile make run, fresh folder"]["measured"] == "75.0 s"
    ratio = rows["pipeline / plain script"]
    assert ratio["measured"] == "1.45x" and ratio["limit"] == "<= 1.3x"
    assert rows["make test"]["measured"] == "280 s, 900 passed"
    assert rows["second build after one model's setting changed"]["measured"] == "40.0 s (model_comparison 12.0 s)"


def test_numbers_of_another_profile_or_missing_sections_are_not_judged():
    other = results(comparison={"profile": "test", "daily": {"all_cores": {"median_s": 10.0}}},
                    make_test={"seconds": 250.0, "exit": 1, "counts": {"passed": 890, "failed": 2}})
    del other["growth"]
    rows = by_target(targets.targets(other))

    assert rows["daily model comparison, all models and folds"]["met"] == "not judged (test profile)"
    assert rows["make test"]["met"] == "no (tests failed)"
    assert rows["make test"]["measured"] == "250 s, 890 passed, 2 failed"
    assert rows["growth of the daily comparison, 4x series"]["measured"] == "not run"
    assert all(r["met"] == "not run" for r in targets.targets({}) if r["target"] != "make test") \
        and by_target(targets.targets({}))["make test"]["met"] == "not run"


@pytest.mark.parametrize(("grid", "met", "measured"), [
    ({"time_ratio_pmdarima_over_grid": 14.2, "pooled_rmse_relative_difference": -0.012}, "yes",
     "14.2x, pooled RMSE 1.2% apart"),
    ({"engines": {"speedup": 12.0}, "rmse_ratio": 1.05}, "no", "12.0x, pooled RMSE 5.0% apart"),
    ({"speedup": 8.0, "rmse_diff_pct": 1.0}, "no", "8.0x, pooled RMSE 1.0% apart"),
    ({"seconds": 3.0}, "unreadable", "speed-up not found, pooled RMSE difference not found"),
])
def test_the_arima_grid_section_is_read_whatever_its_keys(grid, met, measured):
    row = by_target(targets.targets(results(arima_grid=grid)))["ARIMA order grid against pmdarima"]
    assert (row["met"], row["measured"]) == (met, measured)


def test_bench_table_prints_the_targets_of_a_results_file(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results()))

    assert run.main(["--table", "--output", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| target | measured (median) | limit | met |") and len(lines) == 2 + 15
    assert "| full-profile make run, fresh folder | 75.0 s | <= 90 s | yes | pipeline.full.median_s |" in lines

    assert run.main(["--table", "--output", str(tmp_path / "none.json")]) == 2
    assert "cannot read the results" in capsys.readouterr().err


def test_the_daily_cycles_section_gives_the_later_sections_their_environment_back(tmp_path, monkeypatch):
    """bench/run.py runs the sections in one process: the cycles' fast profile and calendar settings
    must not reach make_test, which runs after them (here the section fails early: no source file)."""
    import os

    import run  # bench/run.py

    for key in [k for k in os.environ if k.startswith("HELPERS_") and k != "HELPERS_ROOT"]:
        monkeypatch.delenv(key)
    monkeypatch.delitem(sys.modules, "cycle_pages", raising=False)  # imported here, as the section does first
    monkeypatch.setenv("HELPERS_SOURCE_FILE", str(tmp_path / "absent.csv"))
    before = dict(os.environ)
    with pytest.raises(FileNotFoundError):
        run.bench_daily_cycles(None, 1, tmp_path)
    assert dict(os.environ) == before
