"""Data-quality checks for a time-series file, run before anything is loaded.

Each ``check_*`` function looks for one kind of problem and returns what it found as
:class:`Finding` objects (file, column, number of rows, a few examples); :func:`validate`
runs them all and splits the rows into clean and quarantined ones. The caller decides what
to do: :mod:`helpers.data.ingest` loads the clean rows and stores the rest with their reasons.

Kinds of problem
----------------
Row-level (the row is quarantined, with every reason that applies):

- ``missing_value``: an empty or NA-like cell in a used column;
- ``unparseable``: a value that is not a timestamp / number (wrong type);
- ``out_of_range``: a target outside ``[target_min, target_max]`` or an impossible temperature;
- ``unknown_category``: a work-day flag that is not 0 or 1;
- ``off_frequency``: a timestamp that is not on the series' grid (e.g. 00:15 in 30-minute data);
- ``duplicate_timestamp``: a timestamp seen before. Exact copies: the first row is kept and the
  copies quarantined. Conflicting values: every row of that timestamp is quarantined, because
  nothing says which one is right (the gap this leaves is reported with the other gaps).

File-level (reported, nothing quarantined):

- the file cannot be read (missing, not readable, damaged compression, not in the
  ``encoding`` setting, corrupt Parquet, empty, no data rows): :func:`read_source` rejects it
  with the file, the reason and what to do;
- ``missing_column``: a required column is absent; the whole file is rejected;
- ``out_of_order``: rows whose timestamp is earlier than one above them; rows are sorted;
- ``gap``: expected timestamps absent from the clean rows, as runs with their lengths.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import gzip
import json
import lzma
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import BaseOffset, Tick

from helpers.core.files import unreadable
from helpers.core.provenance import utc_now
from helpers.core.settings import Settings, where

ROW_KINDS = (
    "missing_value",
    "unparseable",
    "out_of_range",
    "duplicate_timestamp",
    "unknown_category",
    "off_frequency",
)
FILE_KINDS = ("missing_column", "out_of_order", "gap")
#: Cell texts read as missing (compared case-insensitively, after stripping blanks).
NA_TOKENS = frozenset({"", "na", "nan", "null", "none", "n/a", "#n/a", "nat"})
#: Physically possible near-surface air temperatures, deg C (records: -89.2 and 56.7).
TEMPERATURE_RANGE = (-90.0, 60.0)
MAX_EXAMPLES = 5
#: Rows read, checked and staged at a time. Ingest holds one chunk as text (about 120 MB
#: for 100,000 rows while it is parsed) plus 33 bytes per row of the whole file (timestamp,
#: three values, a flag), so its memory grows far slower than the file.
CHUNK_ROWS = 100_000
#: The int64 pandas and numpy use for NaT.
NAT = np.iinfo(np.int64).min


class DataQualityError(ValueError):
    """The file cannot be loaded at all (unreadable, or a required column is missing)."""


@dataclass(frozen=True)
class SeriesSpec:
    """Which columns of a file play which role, the expected spacing, and plausible ranges."""

    series_id: str
    timestamp_col: str
    target_col: str
    temperature_col: str | None = None
    workday_col: str | None = None
    freq: str = "30min"
    target_min: float | None = 0.0
    target_max: float | None = None
    temperature_range: tuple[float, float] = TEMPERATURE_RANGE

    def __post_init__(self) -> None:
        used = [c for c in self.columns().values()]
        if len(set(used)) != len(used):
            raise ValueError(f"each role needs its own column, got {self.columns()}")
        self.offset  # raises a clear error for an unknown frequency
        if self.target_min is not None and self.target_max is not None and self.target_min > self.target_max:
            raise ValueError(f"target_min {self.target_min} is above target_max {self.target_max}")

    @classmethod
    def from_settings(cls, settings: Settings) -> SeriesSpec:
        return cls(
            series_id=settings.series_id,
            timestamp_col=settings.timestamp_col,
            target_col=settings.target_col,
            temperature_col=settings.temperature_col,
            workday_col=settings.workday_col,
            freq=settings.freq,
            target_min=settings.target_min,
            target_max=settings.target_max,
        )

    @property
    def offset(self) -> BaseOffset:
        try:
            return to_offset(self.freq)
        except ValueError:
            raise ValueError(
                f"freq {self.freq!r} is not a pandas offset alias; use e.g. '30min', '1h', '1D', 'MS'"
            ) from None

    def columns(self) -> dict[str, str]:
        """Role -> column in the file, for the roles this series has."""
        pairs = {"ts": self.timestamp_col, "y": self.target_col,
                 "temperature": self.temperature_col, "workday": self.workday_col}
        return {role: col for role, col in pairs.items() if col}


@dataclass(frozen=True)
class Finding:
    """One kind of problem in one column: how many rows, and a few examples."""

    kind: str
    column: str
    n_rows: int
    examples: tuple[str, ...]
    message: str
    rows: tuple[int, ...] = field(default=(), repr=False)  # 0-based positions in the file

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "column": self.column, "n_rows": self.n_rows,
                "examples": list(self.examples), "message": self.message}


class FindingCounts:
    findings: list[Finding]

    def count(self, kind: str) -> int:
        """Rows (or, for ``gap``, missing timestamps) flagged with ``kind`` across columns."""
        return sum(f.n_rows for f in self.findings if f.kind == kind)

    @property
    def counts(self) -> dict[str, int]:
        return {kind: self.count(kind) for kind in ROW_KINDS + FILE_KINDS}


@dataclass
class ValidationResult(FindingCounts):
    """Clean rows (roles as columns, sorted by time) and quarantined rows with reasons."""

    source: str
    rows_read: int
    clean: pd.DataFrame
    quarantine: pd.DataFrame  # row_number (1-based), reasons, record (JSON text)
    findings: list[Finding]
    gaps: pd.DataFrame  # start, end, n_missing

    @property
    def n_clean(self) -> int:
        return len(self.clean)


# -- reading ---------------------------------------------------------------------------------
#: Byte-order marks, longest first (the UTF-32 LE mark begins with the UTF-16 LE one).
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
BOM_NAMES = {"utf-8-sig": "UTF-8", "utf-16": "UTF-16", "utf-32": "UTF-32"}
#: Compression by suffix, as pandas infers it: name, the bytes such a file starts with, the command
#: that tests one.
COMPRESSIONS = {".gz": ("gzip", b"\x1f\x8b", "gzip -t"), ".bz2": ("bzip2", b"BZh", "bzip2 -t"),
                ".xz": ("xz", b"\xfd7zXZ\x00", "xz -t"), ".zip": ("zip", b"PK", "unzip -t")}
#: What a damaged compressed stream raises (``OSError`` too: ``BadGzipFile``, bz2's "Invalid data stream").
DAMAGED = (EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, OSError)
NEW_COPY = "copy or download the file again"


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def _open_decompressed(path: Path, compression: str | None) -> Any:
    if compression == "gzip":
        return gzip.open(path, "rb")
    if compression == "bzip2":
        return bz2.open(path, "rb")
    if compression == "xz":
        return lzma.open(path, "rb")
    if compression == "zip":
        archive = zipfile.ZipFile(path)
        names = archive.namelist()
        if not names:
            raise zipfile.BadZipFile("the archive holds no file")
        return archive.open(names[0])
    return open(path, "rb")


def byte_order_mark(head: bytes) -> str | None:
    """The encoding named by the byte-order mark ``head`` starts with (``utf-8-sig``, ``utf-16``,
    ``utf-32``), or ``None``."""
    return next((name for mark, name in BOMS if head.startswith(mark)), None)


def _undecodable_line(path: Path, kind: str | None, encoding: str) -> int | None:
    """The number of the first line of ``path`` that is not text in ``encoding``."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with _open_decompressed(path, kind) as handle:
        for number, line in enumerate(handle, start=1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError:
                return number
    return None


def _decode_problem(path: Path, kind: str | None, exc: UnicodeDecodeError, encoding: str, bom: str | None) -> str:
    what = (f"it starts with a {BOM_NAMES[bom]} byte-order mark but is not {BOM_NAMES[bom]}" if bom
            else f"the text is not {encoding}")
    byte = exc.object[exc.start:exc.start + 1].hex()
    line = _undecodable_line(path, kind, encoding)
    on_line = f" on line {line}" if line else ""
    return (f"{path}: {what} (byte 0x{byte}{on_line} cannot be decoded); set encoding to the "
            f"encoding the file is in, for example latin-1 or cp1252 ({where('encoding')}, or --encoding), "
            "or save the file as UTF-8")


def read_source(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet file; CSV cells stay text for checking.

    A CSV's byte-order mark, if it has one, gives its encoding (UTF-8, UTF-16, UTF-32);
    otherwise it is read as ``encoding``. A UTF-8 mark on text that is not UTF-8 (a Latin-1
    file saved with a mark) is read as ``encoding`` when that is not UTF-8.

    Raises :class:`DataQualityError` naming the file, the reason and what to do when the
    file is missing, unreadable, of an unknown type, damaged, not in the encoding, empty or
    without data rows.
    """
    (frame,) = read_chunks(path, encoding, chunk_rows=None)
    return frame


def read_chunks(path: str | Path, encoding: str = "utf-8", chunk_rows: int | None = CHUNK_ROWS
                ) -> Iterator[pd.DataFrame]:
    """The rows of ``path`` as frames of at most ``chunk_rows`` rows (one frame when ``None``),
    read as :func:`read_source` reads them and refused for the same reasons; a problem found
    part way through (a damaged end, an undecodable line) is raised when that chunk is read."""
    path = Path(path)
    if not path.exists():
        raise DataQualityError(f"{path}: file not found")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".parquet":
        chunks = _parquet_chunks(path, chunk_rows)
    elif ".csv" in suffixes:
        chunks = _csv_chunks(path, COMPRESSIONS.get(suffixes[-1]), encoding, chunk_rows)
    else:
        raise DataQualityError(f"{path}: unsupported file type; use .csv, .csv.gz (or .bz2/.zip/.xz) or .parquet")
    return _nonempty(path, chunks)


def _nonempty(path: Path, chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    columns: list[str] = []
    n_rows = 0
    for frame in chunks:
        columns = [str(c) for c in frame.columns]
        if not frame.empty:
            n_rows += len(frame)
            yield frame
    if not n_rows:
        raise DataQualityError(f"{path}: the file has no data rows (columns found: {columns});"
                               " load a file with a header line and at least one row below it")


def _parquet_chunks(path: Path, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    try:
        if chunk_rows is None:
            yield pd.read_parquet(path)
            return
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
        names = [name for name in schema.names if name not in index]
        if parquet.metadata.num_rows == 0:
            yield schema.empty_table().select(names).to_pandas()
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=names):
            yield batch.to_pandas()
    except (PermissionError, IsADirectoryError) as exc:
        raise DataQualityError(unreadable(path, exc)) from None
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
        size = path.stat().st_size
        raise DataQualityError(
            f"{path}: not a readable Parquet file ({size} bytes; {exc}); it was probably cut short or is not "
            f"Parquet: {NEW_COPY}, or write it again (pandas: DataFrame.to_parquet)") from None


def _csv_chunks(path: Path, compression: tuple[str, bytes, str] | None, encoding: str,
                chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    kind, magic, test_command = compression or (None, b"", "")
    read_as, bom = encoding, None
    try:
        if kind:
            with open(path, "rb") as raw:
                start = raw.read(len(magic))
            if start != magic:
                raise DataQualityError(
                    f"{path}: named {path.suffix} but not {kind}-compressed (it starts with {start!r}); rename it "
                    f"to end in .csv if it is plain text, or {NEW_COPY}")
        with _open_decompressed(path, kind) as handle:
            head = handle.read(4)
        bom = byte_order_mark(head)
        read_as = bom or encoding
        mark = ""
        if bom == "utf-8-sig" and not _is_utf8(encoding) and _undecodable_line(path, kind, bom) is not None:
            # A UTF-8 mark on text that is not UTF-8 (a Latin-1 file saved with one): the setting
            # decides, and the mark, decoded as that encoding, is dropped from the first column name.
            read_as, bom = encoding, None
            mark = codecs.BOM_UTF8.decode(encoding, errors="replace")
        reader = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding=read_as,
                             chunksize=chunk_rows)
        with contextlib.nullcontext((reader,)) if chunk_rows is None else reader as frames:
            for frame in frames:
                if mark:
                    frame = frame.rename(columns={frame.columns[0]: str(frame.columns[0]).removeprefix(mark)})
                yield frame
    except DataQualityError:
        raise
    except UnicodeDecodeError as exc:
        raise DataQualityError(_decode_problem(path, kind, exc, read_as, bom)) from None
    except pd.errors.EmptyDataError:
        what = "holds no text once decompressed" if kind else "is empty"
        raise DataQualityError(f"{path}: the file {what} (no header line, no rows); "
                               "load a file with a header line and at least one row below it") from None
    except pd.errors.ParserError as exc:
        raise DataQualityError(f"{path}: not a well-formed CSV ({str(exc).strip()}); check that the separator "
                               "is a comma and that quotes are closed") from None
    except (PermissionError, IsADirectoryError) as exc:
        raise DataQualityError(unreadable(path, exc)) from None
    except DAMAGED as exc:
        if not kind:
            raise DataQualityError(unreadable(path, exc)) from None
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, EOFError):
            reason = f"{reason}: the file was cut short"
        raise DataQualityError(
            f"{path}: the {kind}-compressed data is damaged ({reason}); {NEW_COPY} "
            f"(`{test_command} {path}` checks a copy)") from None


# -- single checks ---------------------------------------------------------------------------
def _examples(rows: np.ndarray, values: pd.Series, first_row: int = 0) -> tuple[str, ...]:
    """``row <n>: <value>`` for the first rows (0-based positions in ``values``, which starts at
    0-based row ``first_row`` of the file)."""
    return tuple(f"row {first_row + int(r) + 1}: {values.iloc[int(r)]!r}" for r in rows[:MAX_EXAMPLES])


def finding_from_mask(kind: str, column: str, mask: np.ndarray, values: pd.Series, message: str) -> Finding | None:
    """A :class:`Finding` for the rows where ``mask`` is true (``values`` gives the examples), or ``None``."""
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        return None
    return Finding(kind, column, len(rows), _examples(rows, values), message, tuple(int(r) for r in rows))


def check_required_columns(frame: pd.DataFrame, spec: SeriesSpec, source: str = "<data>") -> list[Finding]:
    """A finding for each configured column the file lacks (the file must then be rejected)."""
    found = [str(c) for c in frame.columns]
    findings = []
    for role, column in spec.columns().items():
        if column not in frame.columns:
            findings.append(Finding(
                "missing_column", column, len(frame), (),
                f"{source}: missing required column {column!r} (role {role}); columns found: {found}",
            ))
    return findings


def is_missing(values: pd.Series) -> np.ndarray:
    """True where a cell is NA or an NA-like text (see :data:`NA_TOKENS`)."""
    text = values.astype("string").str.strip().str.lower()
    return (values.isna() | text.isin(NA_TOKENS).fillna(False)).to_numpy(dtype=bool)


def check_missing_values(frame: pd.DataFrame, spec: SeriesSpec) -> list[Finding]:
    findings = []
    for role, column in spec.columns().items():
        hit = finding_from_mask("missing_value", column, is_missing(frame[column]), frame[column],
                       f"{column!r} ({role}) is empty or NA")
        if hit:
            findings.append(hit)
    return findings


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO 8601 timestamps; ones with a UTC offset are converted to UTC, naive ones kept as given."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        return parsed.astype("datetime64[ns]")
    text = values.astype("string").str.strip()
    has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).fillna(False).to_numpy(dtype=bool)
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    if (~has_offset).any():
        parsed[~has_offset] = pd.to_datetime(text[~has_offset], errors="coerce", format="ISO8601")
    if has_offset.any():
        aware = pd.to_datetime(text[has_offset], errors="coerce", format="ISO8601", utc=True)
        parsed[has_offset] = aware.dt.tz_localize(None)
    return parsed


def parse_numbers(values: pd.Series) -> pd.Series:
    """Finite floats; anything else (text, inf) becomes NaN."""
    numbers = pd.to_numeric(values.astype("string").str.strip(), errors="coerce").astype("float64")
    return numbers.where(np.isfinite(numbers))


def parse_flag(values: pd.Series) -> pd.Series:
    """0/1 flags (also 0.0/1.0, true/false); anything else becomes NA."""
    text = values.astype("string").str.strip().str.lower()
    mapped = text.map({"0": 0, "1": 1, "0.0": 0, "1.0": 1, "true": 1, "false": 0})
    return mapped.astype("Int64")


def check_unparseable(frame: pd.DataFrame, spec: SeriesSpec, parsed: pd.DataFrame) -> list[Finding]:
    """Cells that are present but not of the column's type (the flag is checked as a category)."""
    findings = []
    expected = {"ts": "an ISO 8601 timestamp", "y": "a number", "temperature": "a number"}
    for role, what in expected.items():
        column = spec.columns().get(role)
        if column is None:
            continue
        bad = ~is_missing(frame[column]) & parsed[role].isna().to_numpy()
        hit = finding_from_mask("unparseable", column, bad, frame[column], f"{column!r} ({role}) is not {what}")
        if hit:
            findings.append(hit)
    return findings


def check_out_of_range(frame: pd.DataFrame, spec: SeriesSpec, parsed: pd.DataFrame) -> list[Finding]:
    findings = []
    bounds = {"y": (spec.target_min, spec.target_max), "temperature": spec.temperature_range}
    for role, (low, high) in bounds.items():
        column = spec.columns().get(role)
        if column is None:
            continue
        values = parsed[role]
        bad = np.zeros(len(values), dtype=bool)
        if low is not None:
            bad |= (values < low).to_numpy()
        if high is not None:
            bad |= (values > high).to_numpy()
        hit = finding_from_mask("out_of_range", column, bad, frame[column],
                       f"{column!r} ({role}) outside the allowed range [{low}, {high}]")
        if hit:
            findings.append(hit)
    return findings


def check_unknown_category(frame: pd.DataFrame, spec: SeriesSpec, parsed: pd.DataFrame) -> list[Finding]:
    column = spec.workday_col
    if column is None:
        return []
    bad = ~is_missing(frame[column]) & parsed["workday"].isna().to_numpy()
    hit = finding_from_mask("unknown_category", column, bad, frame[column], f"{column!r} (workday) must be 0 or 1")
    return [hit] if hit else []


def check_off_frequency(frame: pd.DataFrame, spec: SeriesSpec, parsed: pd.DataFrame) -> list[Finding]:
    """Timestamps off the series' grid.

    For fixed spacings the grid's phase is the most common ``ts mod step`` in the file, so
    one stray first row cannot shift the grid; calendar offsets use ``is_on_offset``.
    """
    ts = parsed["ts"]
    valid = ts.notna().to_numpy()
    bad = np.zeros(len(ts), dtype=bool)
    offset = spec.offset
    if valid.any():
        if isinstance(offset, Tick):
            step = offset.nanos
            phase = ts[valid].astype("int64").to_numpy() % step
            phases, counts = np.unique(phase, return_counts=True)
            bad[valid] = phase != phases[counts.argmax()]
        else:
            bad[valid] = ~np.array([offset.is_on_offset(t) for t in ts[valid]], dtype=bool)
    hit = finding_from_mask("off_frequency", spec.timestamp_col, bad, frame[spec.timestamp_col],
                   f"{spec.timestamp_col!r} not on the {spec.freq} grid")
    return [hit] if hit else []


def check_duplicate_timestamps(ts: np.ndarray, values: np.ndarray, eligible: np.ndarray
                               ) -> tuple[np.ndarray, int, int]:
    """Repeated timestamps among ``eligible`` rows (those with no other problem).

    ``ts`` is int64 nanoseconds, ``values`` one float column per value role (NaN for NA).
    Returns the 0-based rows to quarantine (exact copies after the first; every row of a
    timestamp with conflicting values), the number of exact copies and of conflicting rows.
    """
    candidates = np.flatnonzero(eligible)
    order = candidates[np.argsort(ts[candidates], kind="stable")]  # file order within a timestamp
    sorted_ts = ts[order]
    starts = np.r_[True, sorted_ts[1:] != sorted_ts[:-1]]
    group = np.cumsum(starts) - 1
    repeated = np.bincount(group)[group] > 1
    if not repeated.any():
        return np.empty(0, dtype=np.int64), 0, 0
    order, starts, group = order[repeated], starts[repeated], group[repeated]
    firsts = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    mine, first = values[order], values[firsts]
    same = ((mine == first) | (np.isnan(mine) & np.isnan(first))).all(axis=1)
    _, local = np.unique(group, return_inverse=True)
    exact = (np.bincount(local, weights=~same) == 0)[local]
    bad = ~exact | ~starts
    return np.sort(order[bad]), int((exact & ~starts).sum()), int((~exact).sum())


def check_out_of_order(ts: np.ndarray) -> np.ndarray:
    """0-based rows whose timestamp (int64 ns, :data:`NAT` for none) is earlier than one above them."""
    valid = ts != NAT
    running_max = np.maximum.accumulate(np.where(valid, ts, NAT))  # NaT is the smallest int64
    return np.flatnonzero(valid & (ts < np.r_[NAT, running_max[:-1]]))


def find_gaps(ts: pd.Series, freq: str) -> pd.DataFrame:
    """Runs of expected timestamps absent between the first and last of ``ts``.

    Returns columns ``start``, ``end`` (first and last missing timestamp) and ``n_missing``.
    """
    empty = pd.DataFrame({"start": pd.Series(dtype="datetime64[ns]"),
                          "end": pd.Series(dtype="datetime64[ns]"), "n_missing": pd.Series(dtype="int64")})
    ts = pd.DatetimeIndex(ts.dropna()).unique().sort_values()
    if len(ts) < 2:
        return empty
    expected = pd.date_range(ts[0], ts[-1], freq=freq)
    missing = expected.difference(ts)
    if len(missing) == 0:
        return empty
    position = expected.get_indexer(missing)
    run_id = np.cumsum(np.diff(position, prepend=position[0] - 2) != 1)
    runs = pd.DataFrame({"ts": missing, "run": run_id}).groupby("run")["ts"]
    return pd.DataFrame({"start": runs.min(), "end": runs.max(), "n_missing": runs.size()}).reset_index(drop=True)


def _gapfinding_from_mask(gaps: pd.DataFrame, spec: SeriesSpec) -> Finding | None:
    if gaps.empty:
        return None
    examples = tuple(f"{g.start} to {g.end} ({g.n_missing} missing)" for g in gaps.head(MAX_EXAMPLES).itertuples())
    n = int(gaps["n_missing"].sum())
    return Finding("gap", spec.timestamp_col, n, examples,
                   f"{n} expected {spec.freq} timestamps missing in {len(gaps)} gaps")


# -- quarantine --------------------------------------------------------------------------------
def row_reasons(findings: list[Finding], reasons: dict[int, list[str]] | None = None) -> dict[int, list[str]]:
    """Every reason (``kind:column``) per 0-based row of the findings, added to ``reasons`` if given."""
    reasons = {} if reasons is None else reasons
    for finding in findings:
        for row in finding.rows:
            reasons.setdefault(row, []).append(f"{finding.kind}:{finding.column}")
    return reasons


def quarantine_table(frame: pd.DataFrame, reasons: dict[int, list[str]]) -> pd.DataFrame:
    """The quarantined rows of ``frame`` as stored: ``row_number`` (1-based), ``reasons``
    (joined by ``'; '``) and ``record`` (the row as read, JSON text)."""
    rows = sorted(reasons)
    return pd.DataFrame({
        "row_number": pd.Series([r + 1 for r in rows], dtype="int64"),
        "reasons": pd.Series(["; ".join(reasons[r]) for r in rows], dtype="object"),
        "record": pd.Series([json.dumps({str(k): (None if pd.isna(v) else str(v)) for k, v in frame.iloc[r].items()})
                             for r in rows], dtype="object"),
    })


# -- all checks together ---------------------------------------------------------------------
def parse_frame(frame: pd.DataFrame, spec: SeriesSpec) -> pd.DataFrame:
    """The file's columns parsed into roles; unparseable cells become NA."""
    columns = spec.columns()
    return pd.DataFrame({
        "ts": parse_timestamps(frame[columns["ts"]]),
        "y": parse_numbers(frame[columns["y"]]),
        "temperature": (parse_numbers(frame[columns["temperature"]]) if "temperature" in columns
                        else pd.Series(np.nan, index=frame.index)),
        "workday": (parse_flag(frame[columns["workday"]]) if "workday" in columns
                    else pd.Series(pd.NA, index=frame.index, dtype="Int64")),
    }, index=frame.index)


@dataclass
class FileCheck(FindingCounts):
    """What the checks found in a whole file, kept compact: per row a timestamp, three values
    and a flag (33 bytes), the flagged rows of each finding, and no text.

    ``findings`` are those :func:`validate` returns, without their ``rows``; ``flagged``
    holds them, by ``(kind, column)``, as sorted 0-based row arrays.
    """

    source: str
    rows_read: int
    findings: list[Finding]
    flagged: dict[tuple[str, str], np.ndarray]
    gaps: pd.DataFrame
    quarantined: np.ndarray  # bool per row
    ts: np.ndarray  # int64 ns, NAT where none
    values: np.ndarray  # float64, one column each for y, temperature, workday (NaN for NA)
    started_at: datetime = field(default_factory=utc_now)

    @property
    def n_clean(self) -> int:
        return self.rows_read - int(self.quarantined.sum())

    def clean_chunks(self, chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
        """The clean rows sorted by time (stable), ``chunk_rows`` at a time, with columns
        ``ts``, ``y``, ``temperature``, ``workday`` (``Int64``)."""
        rows = np.flatnonzero(~self.quarantined)
        rows = rows[np.argsort(self.ts[rows], kind="stable")]
        step = chunk_rows or CHUNK_ROWS
        for start in range(0, max(len(rows), 1), step):
            part = rows[start:start + step]
            values = self.values[part]
            yield pd.DataFrame({
                "ts": self.ts[part].view("datetime64[ns]"), "y": values[:, 0], "temperature": values[:, 1],
                "workday": pd.Series(values[:, 2]).astype("Int64"),
            })

    def release_rows(self) -> None:
        """Free the per-row arrays (once the rows are staged); counts and findings stay."""
        self.ts, self.values = np.empty(0, dtype=np.int64), np.empty((0, 3))
        self.flagged = {}

    def reasons(self, start: int, stop: int) -> dict[int, list[str]]:
        """Every reason (``kind:column``) of each quarantined row in ``start:stop``, keyed by its
        position from ``start``, in the order of the findings."""
        reasons: dict[int, list[str]] = {}
        for finding in self.findings:
            rows = self.flagged.get((finding.kind, finding.column))
            if rows is None or finding.kind not in ROW_KINDS:
                continue
            for row in rows[np.searchsorted(rows, start):np.searchsorted(rows, stop)]:
                reasons.setdefault(int(row) - start, []).append(f"{finding.kind}:{finding.column}")
        return reasons


#: Reads the text of some rows of a column: ``(column, sorted 0-based rows) -> values``.
TextLookup = Callable[[str, np.ndarray], pd.Series]


class FileChecker:
    """The checks of :func:`validate`, run over a file a chunk of rows at a time.

    Row checks run on each chunk as it comes (:meth:`add`); what needs the whole file (the
    grid's phase, duplicates, order, gaps) runs in :meth:`finish` on the compact arrays kept
    per row. The result equals :func:`validate` on the whole file at once.
    """

    def __init__(self, spec: SeriesSpec, source: str = "<data>") -> None:
        self.spec, self.source = spec, source
        self.rows_read = 0
        self._ts: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._rows: dict[tuple[str, str], list[np.ndarray]] = {}
        self._found: dict[tuple[str, str], Finding] = {}  # first chunk's finding: message, examples
        self._examples: dict[tuple[str, str], list[str]] = {}
        self._phases: dict[int, int] = {}
        self._tick = isinstance(spec.offset, Tick)

    def _slots(self) -> list[tuple[str, str]]:
        """The row-level findings in the order one pass over the whole file reports them."""
        columns = self.spec.columns()
        order = [("missing_value", c) for c in columns.values()]
        order += [("unparseable", columns[r]) for r in ("ts", "y", "temperature") if r in columns]
        order += [("out_of_range", columns[r]) for r in ("y", "temperature") if r in columns]
        order += [("unknown_category", columns["workday"])] if "workday" in columns else []
        return order + [("off_frequency", columns["ts"])]

    def add(self, frame: pd.DataFrame) -> None:
        """Check the next rows of the file (text as read); raise :class:`DataQualityError` when a
        required column is missing."""
        missing_columns = check_required_columns(frame, self.spec, self.source)
        if missing_columns:
            raise DataQualityError("; ".join(f.message for f in missing_columns))
        frame = frame.reset_index(drop=True)
        parsed = parse_frame(frame, self.spec)
        findings = (check_missing_values(frame, self.spec) + check_unparseable(frame, self.spec, parsed)
                    + check_out_of_range(frame, self.spec, parsed) + check_unknown_category(frame, self.spec, parsed))
        ts = parsed["ts"].to_numpy(dtype="datetime64[ns]").view("int64")
        if self._tick:
            valid = ts[ts != NAT]
            for phase, n in zip(*np.unique(valid % self.spec.offset.nanos, return_counts=True)):
                self._phases[int(phase)] = self._phases.get(int(phase), 0) + int(n)
        else:  # calendar offsets have no phase to learn: each row is on the offset or not
            findings += check_off_frequency(frame, self.spec, parsed)
        for finding in findings:
            slot = (finding.kind, finding.column)
            rows = np.asarray(finding.rows, dtype=np.int64)
            self._rows.setdefault(slot, []).append(rows + self.rows_read)
            self._found.setdefault(slot, finding)
            examples = self._examples.setdefault(slot, [])
            examples += _examples(rows[:MAX_EXAMPLES - len(examples)], frame[finding.column], self.rows_read)
        self._ts.append(ts)
        self._values.append(np.column_stack([parsed["y"].to_numpy(dtype="float64"),
                                             parsed["temperature"].to_numpy(dtype="float64"),
                                             parsed["workday"].to_numpy(dtype="float64", na_value=np.nan)]))
        self.rows_read += len(frame)

    def finish(self, texts: TextLookup) -> FileCheck:
        """Run the whole-file checks; ``texts`` gives the timestamps' text for their examples."""
        spec, column = self.spec, self.spec.timestamp_col
        ts = np.concatenate(self._ts) if self._ts else np.empty(0, dtype=np.int64)
        values = np.concatenate(self._values) if self._values else np.empty((0, 3))
        self._ts = self._values = []
        flagged = {slot: np.concatenate(parts) for slot, parts in self._rows.items()}
        pending: dict[tuple[str, str], tuple[np.ndarray, str]] = {}  # examples still to read
        if self._tick and self._phases:
            phases = np.array(sorted(self._phases))
            grid = phases[np.argmax([self._phases[p] for p in phases])]  # the most common; ties: smallest
            off = np.flatnonzero((ts != NAT) & (ts % spec.offset.nanos != grid))
            if len(off):
                flagged[("off_frequency", column)] = off
                pending[("off_frequency", column)] = (off, f"{column!r} not on the {spec.freq} grid")
        findings = [self._finding(slot, flagged[slot], pending) for slot in self._slots() if slot in flagged]
        quarantined = np.zeros(len(ts), dtype=bool)
        for rows in flagged.values():
            quarantined[rows] = True

        roles = [i for i, role in enumerate(("y", "temperature", "workday")) if role in spec.columns()]
        duplicates, n_exact, n_conflict = check_duplicate_timestamps(ts, values[:, roles], ~quarantined)
        if len(duplicates):
            slot = ("duplicate_timestamp", column)
            flagged[slot] = duplicates
            pending[slot] = (duplicates, f"{column!r} repeats: {n_exact} exact copies (first row kept), "
                                         f"{n_conflict} rows with conflicting values (all quarantined)")
            findings.append(self._finding(slot, duplicates, pending))
            quarantined[duplicates] = True
        late = check_out_of_order(ts)
        if len(late):
            slot = ("out_of_order", column)
            flagged[slot] = late
            pending[slot] = (late, f"{column!r} earlier than a row above it (rows are sorted before loading)")
            findings.append(self._finding(slot, late, pending))

        gaps = find_gaps(pd.Series(ts[~quarantined].view("datetime64[ns]")), spec.freq)
        gap_finding = _gapfinding_from_mask(gaps, spec)
        if gap_finding:
            findings.append(gap_finding)
        self._read_examples(findings, pending, texts)
        findings = [replace(f, examples=tuple(self._examples.get((f.kind, f.column), f.examples)))
                    if (f.kind, f.column) in pending else f for f in findings]
        return FileCheck(self.source, self.rows_read, findings, flagged, gaps, quarantined, ts, values)

    def _finding(self, slot: tuple[str, str], rows: np.ndarray, pending: dict) -> Finding:
        if slot in pending:
            return Finding(slot[0], slot[1], len(rows), (), pending[slot][1])
        first = self._found[slot]
        return Finding(slot[0], slot[1], len(rows), tuple(self._examples[slot]), first.message)

    def _read_examples(self, findings: list[Finding], pending: dict, texts: TextLookup) -> None:
        """Fill in the examples of the whole-file findings (the timestamp's text, read again)."""
        if not pending:
            return
        wanted = np.unique(np.concatenate([rows[:MAX_EXAMPLES] for rows, _ in pending.values()]))
        text = pd.Series(np.asarray(texts(self.spec.timestamp_col, wanted), dtype=object), index=wanted)
        for slot, (rows, _) in pending.items():
            self._examples[slot] = [f"row {int(r) + 1}: {text[int(r)]!r}" for r in rows[:MAX_EXAMPLES]]


def validate_file(path: str | Path, spec: SeriesSpec, encoding: str = "utf-8",
                  chunk_rows: int | None = None) -> FileCheck:
    """Run every check on the file at ``path``, ``chunk_rows`` (default :data:`CHUNK_ROWS`)
    rows at a time; raises :class:`DataQualityError` as :func:`read_source` and
    :func:`validate` do. The timestamps of whole-file findings' examples are read again."""
    started = utc_now()
    chunk_rows = chunk_rows or CHUNK_ROWS
    checker = FileChecker(spec, str(path))
    for frame in read_chunks(path, encoding, chunk_rows):
        checker.add(frame)

    def texts(column: str, rows: np.ndarray) -> pd.Series:
        return pd.concat(list(select_rows(path, encoding, chunk_rows, rows, column)))

    check = checker.finish(texts)
    check.started_at = started
    return check


def select_rows(path: str | Path, encoding: str, chunk_rows: int, rows: np.ndarray,
                column: str | None = None) -> Iterator[pd.DataFrame | pd.Series]:
    """The given sorted 0-based ``rows`` of the file (or of one ``column``), read again a chunk
    at a time, each chunk's with their file positions as index."""
    first = 0
    for frame in read_chunks(path, encoding, chunk_rows):
        local = rows[np.searchsorted(rows, first):np.searchsorted(rows, first + len(frame))] - first
        if len(local):
            part = frame.iloc[local]
            part.index = local + first
            yield part if column is None else part[column]
        first += len(frame)


def validate(frame: pd.DataFrame, spec: SeriesSpec, source: str = "<data>") -> ValidationResult:
    """Run every check; raise :class:`DataQualityError` when a required column is missing."""
    frame = frame.reset_index(drop=True)
    checker = FileChecker(spec, source)
    checker.add(frame)
    check = checker.finish(lambda column, rows: frame[column].iloc[rows])
    clean = next(check.clean_chunks(max(len(frame), 1)))
    quarantine = quarantine_table(frame, check.reasons(0, len(frame)))
    findings = [replace(f, rows=tuple(int(r) for r in check.flagged[(f.kind, f.column)]))
                if (f.kind, f.column) in check.flagged else f for f in check.findings]
    result = ValidationResult(source, len(frame), clean, quarantine, findings, check.gaps)
    if len(result.clean) + len(result.quarantine) != result.rows_read:  # the accounting invariant
        raise AssertionError(f"{source}: rows read {result.rows_read} != clean {len(clean)} + quarantined "
                             f"{len(quarantine)}")
    return result
