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
#: Rows read, checked and staged at a time. Ingest holds one chunk as text (a few hundred MB
#: for 500,000 rows while it is parsed) plus 33 bytes per row of the whole file (timestamp,
#: three values, a flag), so its memory grows far slower than the file.
CHUNK_ROWS = 500_000
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


@dataclass
class ValidationResult:
    """Clean rows (roles as columns, sorted by time) and quarantined rows with reasons."""

    source: str
    rows_read: int
    clean: pd.DataFrame
    quarantine: pd.DataFrame  # row_number (1-based), reasons, record (JSON text)
    findings: list[Finding]
    gaps: pd.DataFrame  # start, end, n_missing

    def count(self, kind: str) -> int:
        """Rows (or, for ``gap``, missing timestamps) flagged with ``kind`` across columns."""
        return sum(f.n_rows for f in self.findings if f.kind == kind)

    @property
    def counts(self) -> dict[str, int]:
        return {kind: self.count(kind) for kind in ROW_KINDS + FILE_KINDS}


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
def _examples(rows: np.ndarray, values: pd.Series) -> tuple[str, ...]:
    return tuple(f"row {int(r) + 1}: {values.iloc[int(r)]!r}" for r in rows[:MAX_EXAMPLES])


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


def check_duplicate_timestamps(
    frame: pd.DataFrame, spec: SeriesSpec, parsed: pd.DataFrame, eligible: np.ndarray
) -> list[Finding]:
    """Repeated timestamps among ``eligible`` rows (those with no other problem)."""
    candidates = parsed[eligible]
    repeated = candidates[candidates["ts"].duplicated(keep=False)]
    if repeated.empty:
        return []
    value_cols = [role for role in ("y", "temperature", "workday") if role in spec.columns()]
    bad_rows: list[int] = []
    n_exact = n_conflict = 0
    for _, group in repeated.groupby("ts", sort=False):
        distinct = group[value_cols].astype("float64").drop_duplicates()
        if len(distinct) == 1:  # exact copies: keep the first one
            bad_rows.extend(group.index[1:])
            n_exact += len(group) - 1
        else:  # conflicting values: no row can be trusted
            bad_rows.extend(group.index)
            n_conflict += len(group)
    mask = np.zeros(len(parsed), dtype=bool)
    mask[bad_rows] = True
    message = (f"{spec.timestamp_col!r} repeats: {n_exact} exact copies (first row kept), "
               f"{n_conflict} rows with conflicting values (all quarantined)")
    hit = finding_from_mask("duplicate_timestamp", spec.timestamp_col, mask, frame[spec.timestamp_col], message)
    return [hit] if hit else []


def check_out_of_order(frame: pd.DataFrame, spec: SeriesSpec, parsed: pd.DataFrame) -> list[Finding]:
    """Rows whose timestamp is earlier than a timestamp above them in the file."""
    ts = parsed["ts"]
    running_max = ts.ffill().cummax().shift(1)
    bad = (ts < running_max).to_numpy()
    hit = finding_from_mask("out_of_order", spec.timestamp_col, bad, frame[spec.timestamp_col],
                   f"{spec.timestamp_col!r} earlier than a row above it (rows are sorted before loading)")
    return [hit] if hit else []


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


def validate(frame: pd.DataFrame, spec: SeriesSpec, source: str = "<data>") -> ValidationResult:
    """Run every check; raise :class:`DataQualityError` when a required column is missing."""
    missing_columns = check_required_columns(frame, spec, source)
    if missing_columns:
        raise DataQualityError("; ".join(f.message for f in missing_columns))
    frame = frame.reset_index(drop=True)
    parsed = parse_frame(frame, spec)

    findings: list[Finding] = []
    findings += check_missing_values(frame, spec)
    findings += check_unparseable(frame, spec, parsed)
    findings += check_out_of_range(frame, spec, parsed)
    findings += check_unknown_category(frame, spec, parsed)
    findings += check_off_frequency(frame, spec, parsed)

    reasons = row_reasons(findings)
    eligible = np.ones(len(frame), dtype=bool)
    eligible[list(reasons)] = False
    duplicates = check_duplicate_timestamps(frame, spec, parsed, eligible)
    findings += duplicates
    row_reasons(duplicates, reasons)
    findings += check_out_of_order(frame, spec, parsed)

    bad = np.zeros(len(frame), dtype=bool)
    bad[list(reasons)] = True
    clean = parsed[~bad].sort_values("ts", kind="stable").reset_index(drop=True)
    gaps = find_gaps(clean["ts"], spec.freq)
    gap_finding = _gapfinding_from_mask(gaps, spec)
    if gap_finding:
        findings.append(gap_finding)

    quarantine = quarantine_table(frame, reasons)
    result = ValidationResult(source, len(frame), clean, quarantine, findings, gaps)
    if len(result.clean) + len(result.quarantine) != result.rows_read:  # the accounting invariant
        raise AssertionError(f"{source}: rows read {result.rows_read} != clean {len(clean)} + quarantined "
                             f"{len(quarantine)}")
    return result
