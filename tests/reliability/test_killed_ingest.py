"""A load killed at any moment leaves the warehouse all old or all new, never a mix.

Each test loads a first file (state OLD), then runs the real load command of a second file
once to the end on a copy (state NEW, and how long a clean run takes on this machine), then
SIGKILLs the same load at moments spread over that duration, each time on a fresh copy of
the OLD warehouse. Reopening the file (DuckDB replays its write-ahead log) must show OLD or
NEW exactly. The states are read with SQL on the warehouse's tables, not through the
package, so they keep meaning the same when the load's internals change.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.reliability.conftest import LOAD_TIMEOUT, ingest_command, load_env, run_load, series_state, sql_value
from tests.support import half_hourly

N_KILLS = 8
SEED = 20141


def _ab_load(source: Path, warehouse: Path) -> list[str]:
    """The A/B load command; it has no warehouse option, :func:`load_env` names ``warehouse``."""
    return [sys.executable, "-m", "helpers.ab", "load", str(source)]


def _ab_state(path: Path) -> dict:
    with duckdb.connect(str(path)) as connection:
        state = {table: sql_value(connection, f"SELECT count(*) FROM {table}")[0]
                 for table in ("ab_users", "ab_experiments", "quarantine")}
        state["users"] = sql_value(connection, "SELECT md5(string_agg(CAST(row(experiment_id, user_id, variant, "
                                               "assigned_at, converted, revenue) AS VARCHAR), ';' "
                                               "ORDER BY experiment_id, user_id)) FROM ab_users")
        state["sources"] = sql_value(connection, "SELECT list(source ORDER BY experiment_id) FROM ab_experiments")
    return state


def _kill_moments(duration: float, n: int, seed: int) -> list[float]:
    """``n`` delays, one drawn at random from each of ``n`` equal slices of ``[0, 1.05 * duration]``:
    random moments that still cover the whole run, whatever the machine's speed."""
    rng = random.Random(seed)
    width = 1.05 * duration / n
    return [rng.uniform(k * width, (k + 1) * width) for k in range(n)]


def _kill_at_moments(tmp_path: Path, old_file: Path, command, state, n: int, seed: int, processes) -> dict:
    """Measure a clean run of ``command`` on a copy of ``old_file``, then kill it at ``n`` moments,
    each on a fresh copy, and check every outcome is OLD or NEW. Returns the tally."""
    old = state(old_file)
    clean = tmp_path / "clean.duckdb"
    shutil.copy(old_file, clean)
    duration = run_load(command(clean), clean)
    new = state(clean)
    assert new != old
    tally = {"old": 0, "new": 0, "finished": 0, "duration_s": round(duration, 2), "moments_s": []}
    for k, delay in enumerate(_kill_moments(duration, n, seed)):
        copy = tmp_path / f"killed{k}.duckdb"
        shutil.copy(old_file, copy)
        process = subprocess.Popen(command(copy), env=load_env(copy), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        processes.append(process)
        try:
            process.wait(timeout=delay)
            tally["finished"] += 1  # the run ended before its moment came: it must have loaded
            assert process.returncode == 0
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=LOAD_TIMEOUT)
        after = state(copy)
        assert after in (old, new), f"killed after {delay:.2f} s: the warehouse holds a mix of the old and new loads"
        if process.returncode == 0:
            assert after == new
        tally["old" if after == old else "new"] += 1
        tally["moments_s"].append(round(delay, 2))
    return tally


def _first_and_second(tmp_path: Path) -> tuple[Path, Path]:
    """A first file of 20,000 half-hours, and a second one overlapping it with other values and
    extending it to 40,000; each has a few unloadable rows, so the quarantine grows too."""
    first, second = half_hourly(20_000, seed=0), half_hourly(40_000, seed=1)
    first.loc[[5, 700], "demand"] = "n/a"
    second.loc[[9, 21_000, 39_000], "demand"] = "n/a"
    paths = tmp_path / "first.csv", tmp_path / "second.csv"
    first.to_csv(paths[0], index=False)
    second.to_csv(paths[1], index=False)
    return paths


@pytest.mark.slow
def test_an_ingest_killed_at_any_moment_leaves_the_old_load_or_the_new_one(tmp_path, processes):
    first, second = _first_and_second(tmp_path)
    old = tmp_path / "old.duckdb"
    run_load(ingest_command(first, old), old)
    assert series_state(old)["raw_series"] == 20_000 - 2

    tally = _kill_at_moments(tmp_path, old, lambda path: ingest_command(second, path), series_state, N_KILLS, SEED,
                             processes)
    print(f"ingest: clean run {tally['duration_s']} s; killed at {tally['moments_s']} s: {tally['old']} before "
          f"the commit (old load), {tally['new']} after it (new load; {tally['finished']} of them had already exited)")


def _users(n: int, experiments: tuple[str, ...], seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for k in range(n):
        converted = rng.random() < 0.2
        rows.append((experiments[k % len(experiments)], f"u{k}", rng.choice(("control", "treat")),
                     f"2026-01-{5 + k % 7:02d}T{k % 24:02d}:00:00", int(converted),
                     round(rng.uniform(5, 50), 2) if converted else 0))
    return pd.DataFrame(rows, columns=["experiment_id", "user_id", "variant", "assigned_at", "converted", "revenue"])


@pytest.mark.slow
def test_an_ab_load_killed_at_any_moment_leaves_the_old_experiments_or_the_new_ones(tmp_path, processes):
    first, second = tmp_path / "first_users.csv", tmp_path / "second_users.csv"
    _users(500, ("e1", "e2"), seed=0).to_csv(first, index=False)
    _users(10_000, ("e2", "e3"), seed=1).to_csv(second, index=False)  # replaces e2, adds e3, leaves e1
    old = tmp_path / "old.duckdb"
    run_load(_ab_load(first, old), old)

    tally = _kill_at_moments(tmp_path, old, lambda path: _ab_load(second, path), _ab_state, 3, SEED, processes)
    print(f"A/B load: clean run {tally['duration_s']} s; killed at {tally['moments_s']} s: {tally['old']} before "
          f"the commit, {tally['new']} after it ({tally['finished']} of them had already exited)")
