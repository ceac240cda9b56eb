"""Each data-quality fixture is detected as the kind it plants, with nothing lost."""

from __future__ import annotations

import codecs
import json
import re

import numpy as np
import pandas as pd
import pytest

from helpers.data.quality import (
    DataQualityError,
    SeriesSpec,
    check_off_frequency,
    find_gaps,
    parse_flag,
    parse_frame,
    parse_numbers,
    parse_timestamps,
    read_source,
    validate,
)
from tests.support import DQ, UNREADABLE_FILES

# fixture -> (kind, column, rows flagged, rows loaded, rows quarantined)
EXPECTED = {
    "missing_value": [("missing_value", "demand", 1), ("missing_value", "temperature", 1)],
    "unparseable": [("unparseable", "demand", 1), ("unparseable", "timestamp", 1)],
    "out_of_range": [("out_of_range", "demand", 1), ("out_of_range", "temperature", 1)],
    "unknown_category": [("unknown_category", "workday", 2)],
    # its conflicting copy is also the last line, so it is out of order as well
    "duplicate_timestamp": [("duplicate_timestamp", "timestamp", 3), ("out_of_order", "timestamp", 1)],
    "off_frequency": [("off_frequency", "timestamp", 1)],
    "out_of_order": [("out_of_order", "timestamp", 2)],
    "gap": [("gap", "timestamp", 3)],
}
LOADED_QUARANTINED = {
    "missing_value": (6, 2), "unparseable": (6, 2), "out_of_range": (6, 2), "unknown_category": (6, 2),
    "duplicate_timestamp": (7, 3), "off_frequency": (8, 1), "out_of_order": (8, 0), "gap": (5, 0),
}


def _validate(name: str, spec: SeriesSpec):
    path = DQ / f"{name}.csv"
    return validate(read_source(path), spec, str(path))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_is_detected_as_its_kind(name, spec):
    result = _validate(name, spec)
    found = sorted((f.kind, f.column, f.n_rows) for f in result.findings if f.kind != "gap" or name == "gap")
    if name == "duplicate_timestamp":  # the conflicting pair leaves a one-step gap, reported too
        assert result.count("gap") == 1
    assert found == sorted(EXPECTED[name])
    loaded, quarantined = LOADED_QUARANTINED[name]
    assert (len(result.clean), len(result.quarantine)) == (loaded, quarantined)
    assert result.rows_read == len(result.clean) + len(result.quarantine)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_findings_name_file_column_and_examples(name, spec):
    result = _validate(name, spec)
    for finding in result.findings:
        assert finding.n_rows > 0
        assert 0 < len(finding.examples) <= 5
        assert finding.column in finding.message


def test_clean_file_has_no_findings(spec):
    result = _validate("clean", spec)
    assert result.findings == []
    assert len(result.clean) == 8 and result.quarantine.empty


def test_missing_column_rejects_the_file_naming_the_column(spec):
    with pytest.raises(DataQualityError, match=r"missing required column 'demand' \(role y\).*missing_column.csv|"
                                               r"missing_column.csv: missing required column 'demand'"):
        _validate("missing_column", spec)


def test_quarantine_keeps_the_row_as_read_with_every_reason(spec):
    frame = read_source(DQ / "clean.csv")
    frame.loc[2, "demand"] = "-5"
    frame.loc[2, "workday"] = "maybe"
    result = validate(frame, spec)
    row = result.quarantine.iloc[0]
    assert row["row_number"] == 3
    assert row["reasons"] == "out_of_range:demand; unknown_category:workday"
    assert json.loads(row["record"])["workday"] == "maybe"


def test_exact_duplicate_keeps_first_and_conflicts_drop_all(spec):
    result = _validate("duplicate_timestamp", spec)
    assert list(result.quarantine["row_number"]) == [4, 6, 10]
    kept = result.clean.set_index("ts")
    assert pd.Timestamp("2014-01-01 01:00") in kept.index
    assert pd.Timestamp("2014-01-01 02:00") not in kept.index


def test_duplicates_are_judged_after_other_checks(spec):
    """A bad copy of a timestamp is quarantined for its own problem; the good row loads."""
    frame = read_source(DQ / "clean.csv")
    bad_copy = frame.iloc[[1]].assign(demand="")
    result = validate(pd.concat([frame, bad_copy], ignore_index=True), spec)
    assert result.count("duplicate_timestamp") == 0
    assert list(result.quarantine["reasons"]) == ["missing_value:demand"]
    assert len(result.clean) == 8


def test_out_of_order_rows_are_sorted_and_loaded(spec):
    result = _validate("out_of_order", spec)
    assert result.clean["ts"].is_monotonic_increasing
    assert result.quarantine.empty


def test_gaps_are_runs_with_lengths():
    ts = pd.Series(pd.to_datetime(["2014-01-01 00:00", "2014-01-01 00:30", "2014-01-01 02:00",
                                   "2014-01-01 02:30", "2014-01-01 04:00"]))
    gaps = find_gaps(ts, "30min")
    assert list(gaps["n_missing"]) == [2, 2]
    assert gaps["start"].iloc[0] == pd.Timestamp("2014-01-01 01:00")
    assert gaps["end"].iloc[1] == pd.Timestamp("2014-01-01 03:30")
    assert find_gaps(ts.iloc[:2], "30min").empty


def test_off_frequency_grid_is_the_modal_phase(spec):
    """A stray first row does not shift the grid: it is the one flagged."""
    frame = read_source(DQ / "clean.csv")
    frame.loc[0, "timestamp"] = "2013-12-31 23:50:00"
    findings = check_off_frequency(frame, spec, parse_frame(frame, spec))
    assert [f.rows for f in findings] == [(0,)]


def test_calendar_frequency_uses_offsets():
    spec = SeriesSpec("m", "month", "sales", freq="MS")
    frame = pd.DataFrame({"month": ["2020-01-01", "2020-02-01", "2020-02-15", "2020-04-01"],
                          "sales": ["1", "2", "3", "4"]})
    result = validate(frame, spec)
    assert result.count("off_frequency") == 1
    assert result.count("gap") == 1  # March


def test_parsers():
    ts = parse_timestamps(pd.Series(["2014-01-01T10:00:00+10:00", "2014-01-01 00:00:00", "soon"]))
    assert ts.iloc[0] == pd.Timestamp("2014-01-01 00:00")  # converted to UTC
    assert ts.iloc[1] == pd.Timestamp("2014-01-01 00:00")  # naive kept as given
    assert pd.isna(ts.iloc[2])
    nums = parse_numbers(pd.Series(["1.5", " 2 ", "inf", "1,000", "x"]))
    assert nums.iloc[:2].tolist() == [1.5, 2.0] and nums.iloc[2:].isna().all()
    flags = parse_flag(pd.Series(["1", "0.0", "TRUE", "2", "yes"]))
    assert flags.iloc[:3].tolist() == [1, 0, 1] and flags.iloc[3:].isna().all()


def test_parquet_input_with_typed_columns(tmp_path, spec):
    frame = read_source(DQ / "clean.csv")
    typed = pd.DataFrame({
        "timestamp": pd.to_datetime(frame["timestamp"]).dt.tz_localize("Australia/Brisbane"),
        "demand": frame["demand"].astype(float),
        "temperature": frame["temperature"].astype(float),
        "workday": frame["workday"].astype(int),
    })
    typed.loc[3, "demand"] = np.nan
    path = tmp_path / "series.parquet"
    typed.to_parquet(path)
    result = validate(read_source(path), spec)
    assert result.count("missing_value") == 1 and len(result.clean) == 7
    assert result.clean["ts"].iloc[0] == pd.Timestamp("2013-12-31 14:00")  # +10:00 to UTC


@pytest.mark.parametrize("content, message", [
    (None, "file not found"),
    (b"", "the file is empty"),
    (b"timestamp,demand\n", "no data rows"),
])
def test_unreadable_files_are_rejected(tmp_path, spec, content, message):
    path = tmp_path / "x.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataQualityError, match=message):
        read_source(path)


DAMAGED_GZIP = (r"the gzip-compressed data is damaged \({}\); copy or download the file again "
                r"\(`gzip -t {}` checks a copy\)")
NOT_THE_ENCODING = (r"\(byte 0xe9 on line 2 cannot be decoded\); set encoding to the encoding the file is in, "
                    r"for example latin-1 or cp1252 \(set encoding in env\.yaml or HELPERS_ENCODING, or --encoding\), "
                    r"or save the file as UTF-8")
#: fixture in tests/fixtures/unreadable -> what read_source says after "<path>: " (a regular expression)
UNREADABLE = {
    "truncated.csv.gz": DAMAGED_GZIP.format("Compressed file ended before the end-of-stream marker was reached: "
                                            "the file was cut short", ".*truncated.csv.gz"),
    "bit_flipped.csv.gz": DAMAGED_GZIP.format("Error -3 while decompressing data: .*", ".*bit_flipped.csv.gz"),
    "bad_checksum.csv.gz": DAMAGED_GZIP.format("CRC check failed 0x[0-9a-f]+ != 0x[0-9a-f]+", ".*bad_checksum.csv.gz"),
    "not_gzip.csv.gz": (r"named \.gz but not gzip-compressed \(it starts with b'ti'\); rename it to end in \.csv if "
                        r"it is plain text, or copy or download the file again"),
    "empty.csv": (r"the file is empty \(no header line, no rows\); load a file with a header line and at least one "
                  r"row below it"),
    "header_only.csv": (r"the file has no data rows \(columns found: \['timestamp', 'demand', 'temperature', "
                        r"'workday'\]\); load a file with a header line and at least one row below it"),
    "corrupt.parquet": (r"not a readable Parquet file \(\d+ bytes; .*\); it was probably cut short or is not Parquet: "
                        r"copy or download the file again, or write it again \(pandas: DataFrame.to_parquet\)"),
    "not_parquet.parquet": (r"not a readable Parquet file \(293 bytes; .*magic bytes not found.*\); it was probably "
                            r"cut short.*"),
    "latin1.csv": r"the text is not utf-8 " + NOT_THE_ENCODING,
    "latin1.csv.gz": r"the text is not utf-8 " + NOT_THE_ENCODING,
    "latin1_bom.csv": r"it starts with a UTF-8 byte-order mark but is not UTF-8 " + NOT_THE_ENCODING,
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_a_file_that_cannot_be_read_is_refused_naming_it_the_reason_and_what_to_do(name):
    """Truncated and bit-flipped gzip files raised EOFError and zlib.error; the rest said only
    "cannot be read as a table" with the library's words."""
    path = UNREADABLE_FILES / name
    with pytest.raises(DataQualityError) as info:
        read_source(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert re.fullmatch(UNREADABLE[name], message.removeprefix(f"{path}: ")), message


@pytest.mark.parametrize("name, encoding", [
    ("latin1.csv", "latin-1"), ("latin1.csv", "cp1252"), ("latin1.csv.gz", "latin-1"),
    ("latin1_bom.csv", "latin-1"),  # a UTF-8 mark on Latin-1 text: the setting decides, the mark is dropped
    ("utf8_bom.csv", "utf-8"), ("utf8_bom.csv", "latin-1"),  # a mark wins over the setting
    ("utf16.csv", "utf-8"), ("utf16.csv", "latin-1"),
])
def test_encodings_read_with_the_setting_or_their_byte_order_mark(name, encoding):
    frame = read_source(UNREADABLE_FILES / name, encoding)
    assert list(frame.columns) == ["timestamp", "demand", "temperature", "workday", "note"]
    assert frame["note"].tolist() == ["été à Zürich"] * 8
    assert frame["demand"].iloc[0] == "3.91"


def test_byte_order_marks():
    from helpers.data.quality import byte_order_mark

    assert byte_order_mark(codecs.BOM_UTF8 + b"a") == "utf-8-sig"
    assert byte_order_mark(codecs.BOM_UTF16_LE + b"a\x00") == "utf-16"
    assert byte_order_mark(codecs.BOM_UTF16_BE) == "utf-16"
    assert byte_order_mark(codecs.BOM_UTF32_LE) == "utf-32"  # not taken for UTF-16 LE, whose mark it begins with
    assert byte_order_mark(b"time") is None


def test_a_folder_named_like_a_csv_is_refused_with_a_sentence(tmp_path):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(DataQualityError, match=f"^{re.escape(str(folder))} is a folder, not a file; give the path"):
        read_source(folder)


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(DataQualityError, match="unsupported file type"):
        read_source(path)


@pytest.mark.parametrize("kwargs, message", [
    ({"target_col": "timestamp"}, "own column"),
    ({"freq": "fortnightly"}, "not a pandas offset alias"),
    ({"target_min": 5.0, "target_max": 1.0}, "above target_max"),
])
def test_spec_validation(kwargs, message):
    base = {"series_id": "s", "timestamp_col": "timestamp", "target_col": "demand"}
    with pytest.raises(ValueError, match=message):
        SeriesSpec(**{**base, **kwargs})


def test_series_without_covariates(tmp_path):
    spec = SeriesSpec("s", "time", "load", freq="1h", target_min=None)
    frame = pd.DataFrame({"time": pd.date_range("2020-01-01", periods=5, freq="1h").astype(str),
                          "load": ["-1", "2", "3", "4", "5"]})
    result = validate(frame, spec)
    assert result.findings == [] and len(result.clean) == 5
    assert result.clean["temperature"].isna().all() and result.clean["workday"].isna().all()
