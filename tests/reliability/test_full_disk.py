"""A full disk loses nothing: a load that runs out of space is refused with a sentence and the
warehouse keeps its last load; an artifact write that runs out of space keeps the old artifact.

The disk is a tmpfs of 8 MB mounted for the test, which needs root; elsewhere the tests are
skipped and say why.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from helpers.forecast.artifact import load_artifact, write_artifact
from tests.reliability.conftest import LOAD_TIMEOUT, ingest_command, load_env, run_load, series_state
from tests.support import artifact_payload, half_hourly

SIZE = "8m"


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A folder on a fresh tmpfs of :data:`SIZE`, unmounted when the test ends."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, and mounting one needs root")
    mount = tmp_path / "small_disk"
    mount.mkdir()
    tried = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
                           capture_output=True, text=True, timeout=30)
    if tried.returncode != 0:
        pytest.skip(f"cannot mount a {SIZE} tmpfs to fill: {tried.stderr.strip() or tried.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True, timeout=30)


def _fill(folder: Path) -> None:
    """Write a file in ``folder`` until its disk has no room left."""
    with open(folder / "filler", "wb", buffering=0) as handle:  # unbuffered: close() has nothing left to write
        with pytest.raises(OSError) as info:
            while True:
                handle.write(b"\0" * 65536)
    assert info.value.errno == errno.ENOSPC
    assert os.statvfs(folder).f_bavail == 0


@pytest.mark.slow
def test_a_load_that_fills_the_disk_is_refused_with_a_sentence_and_the_first_load_stays(tmp_path, small_disk):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    half_hourly(2_000, seed=0).to_csv(first, index=False)
    half_hourly(200_000, seed=1).to_csv(second, index=False)  # its rows alone need more than 8 MB
    warehouse = small_disk / "warehouse.duckdb"
    run_load(ingest_command(first, warehouse), warehouse)
    loaded = series_state(warehouse)
    assert loaded["raw_series"] == 2_000

    full = subprocess.run(ingest_command(second, warehouse), env=load_env(warehouse), capture_output=True,
                          text=True, timeout=LOAD_TIMEOUT)
    assert full.returncode == 3
    assert "Traceback" not in full.stderr
    assert full.stderr.startswith(f"error: the disk holding {warehouse} is full; the load was rolled back")
    assert "Free space on that disk" in full.stderr and "load the file again" in full.stderr
    assert series_state(warehouse) == loaded


def test_an_artifact_write_on_a_full_disk_keeps_the_old_artifact(small_disk):
    path = small_disk / "model" / "forecast_artifact.json"
    old = artifact_payload(n=3)
    write_artifact(path, old)
    before = path.read_bytes()
    _fill(small_disk)
    with pytest.raises(OSError) as info:
        write_artifact(path, artifact_payload(n=400, models=("a", "b", "ensemble")))
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before and load_artifact(path) == old
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
