"""The monitoring signals snapshot a cycle writes for the service's GET /metrics."""

from __future__ import annotations

import os
from datetime import date, datetime, timezone

import pandas as pd
import pytest

from helpers.operate.monitoring import DRIFT_TABLE_COLUMNS, CurrentState, DriftResult, Signal
from helpers.operate.signal_snapshot import SignalSnapshotReader, SignalValue, write_signal_snapshot

SIGNALS = [Signal("accuracy:ets", "orange", 1.3, "t", "m"), Signal("drift", "grey", None, "t", "m")]


def write(path, signals=SIGNALS, last_actual=date(2015, 1, 20)):
    return write_signal_snapshot(path, signals, series_id="s", as_of=datetime(2015, 1, 21, 6, 15),
                                 last_actual=last_actual, drift_ks_pvalues={"y_mean": 0.5})


def test_what_a_cycle_writes_is_read_back(tmp_path):
    before = datetime.now(timezone.utc).replace(microsecond=0).timestamp()
    path = write(tmp_path / "log" / "signals.json")
    snapshot = SignalSnapshotReader(path).read()
    assert snapshot.signals == (SignalValue("accuracy:ets", "orange", 1.3), SignalValue("drift", "grey", None))
    assert snapshot.series_id == "s" and snapshot.as_of == "2015-01-21T06:15:00"
    assert snapshot.last_actual == datetime(2015, 1, 20, tzinfo=timezone.utc).timestamp()
    assert snapshot.drift_ks_pvalues == {"y_mean": 0.5}
    assert before <= snapshot.created <= before + 60
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~_umask()
    # a timestamp is kept as its day
    again = write(path, last_actual=pd.Timestamp("2015-01-19"))
    assert SignalSnapshotReader(again).read().last_actual == datetime(2015, 1, 19, tzinfo=timezone.utc).timestamp()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_the_file_is_parsed_again_only_when_it_changed(tmp_path):
    path = write(tmp_path / "signals.json")
    reader = SignalSnapshotReader(path)
    first = reader.read()
    assert reader.read() is first
    write(path, [Signal("accuracy:ets", "red", 2.0, "t", "m")], last_actual=None)
    second = reader.read()
    assert second.signals == (SignalValue("accuracy:ets", "red", 2.0),) and second.last_actual is None
    path.unlink()
    assert reader.read() is None


@pytest.mark.parametrize("content", [
    b"", b"[]", b'{"format": 2}', b'{"format": 1, "created_utc": "2026-01-01T00:00:00Z"}',
    b'{"format": 1, "created_utc": "2026-01-01T00:00:00Z", "as_of": "x", "series_id": "s", "last_actual": null,'
    b' "signals": [{"key": "a", "status": "purple", "value": 1}], "drift_ks_pvalues": {}}',
    b'{"format": 1, "created_utc": "2026-01-01T00:00:00Z", "as_of": "x", "series_id": "s", "last_actual": null,'
    b' "signals": [{"key": "a", "status": "red", "value": "high"}], "drift_ks_pvalues": {}}',
    b'{"format": 1, "created_utc": "yesterday", "as_of": "x", "series_id": "s", "last_actual": null,'
    b' "signals": [], "drift_ks_pvalues": {}}',
    b'{"format": 1, "created_utc": "2026-01-01T00:00:00Z", "as_of": "x", "series_id": "s", "last_actual": null,'
    b' "signals": [], "drift_ks_pvalues": []}',
], ids=["empty", "a list", "another format", "cut short", "unknown status", "text value", "bad time",
        "p-values not a mapping"])
def test_a_file_that_is_not_a_snapshot_reads_as_none_and_says_so_once(tmp_path, capsys, content):
    path = tmp_path / "signals.json"
    path.write_bytes(content)
    reader = SignalSnapshotReader(path)
    assert reader.read() is None and reader.read() is None
    err = capsys.readouterr().err
    assert err.count(f"cannot read the monitoring signals {path}") == 1, err
    assert "left out until the next cycle rewrites it" in err


def test_a_folder_in_place_of_the_file_reads_as_none(tmp_path, capsys):
    (tmp_path / "signals.json").mkdir()
    assert SignalSnapshotReader(tmp_path / "signals.json").read() is None
    assert "IsADirectoryError" in capsys.readouterr().err


def test_a_signal_with_an_unknown_status_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(ValueError, match="signal 'accuracy:ets' has status 'amber'; expected one of green, orange"):
        write(tmp_path / "signals.json", [Signal("accuracy:ets", "amber", 1.3, "t", "m")])
    assert list(tmp_path.iterdir()) == []


def test_the_ks_p_values_are_those_of_the_variables_judged():
    table = pd.DataFrame([{"variable": "y_mean", "judged": True, "ks_pvalue": 0.004},
                          {"variable": "temperature_mean", "judged": False, "ks_pvalue": 0.3}],
                         columns=list(DRIFT_TABLE_COLUMNS))
    state = CurrentState([], DriftResult(table, pd.DataFrame()), None)
    assert state.drift_ks_pvalues == {"y_mean": 0.004}
    empty = CurrentState([], DriftResult(pd.DataFrame(columns=list(DRIFT_TABLE_COLUMNS)), pd.DataFrame()), None)
    assert empty.drift_ks_pvalues == {}
