"""Taking in new data: each file dropped in the inbox is checked, loaded and archived once.

A file is known by its content (SHA-256), recorded in the warehouse table ``intake_files``;
nothing else keeps state. So a file dropped twice, or renamed, is taken in once, and the
inbox needs no bookkeeping of its own. What happens to a file, by what the data-quality
checks (:mod:`helpers.data.quality`) find in it:

- every row good: loaded, the original moved to ``<archive_dir>/good/``;
- some rows bad (*mixed*): the good rows loaded, the bad ones (as read, with their reasons)
  written to ``<archive_dir>/bad/<name>.bad-rows.csv``, the original kept beside them;
- nothing loadable (no good row, an unreadable file, a missing column): nothing loaded, the
  original moved to ``<archive_dir>/bad/``.

Archived names start with the first 12 hex digits of the hash, so two different files of
the same name never meet. Each file also gets a data-quality row (``intake_files``: rows
read, loaded and quarantined, errors by kind, a criticality) and a page,
``<archive_dir>/pages/<archived name>.html``.

Criticality (thresholds in ``env.yaml``): *high* when no row could be loaded or the share of
bad rows is at least ``intake_high_share``; *medium* from ``intake_medium_share``, or when
any row has an error of a kind in ``intake_serious_kinds``; else *low*.

Nothing is lost and nothing loaded twice, whenever the process stops. The record of a file
is committed in the same transaction as its rows (:func:`helpers.data.ingest.ingest_file`);
only then are the bad rows written and the original moved. A file whose load did not commit
is still in the inbox, unrecorded, and is taken in by the next cycle; a file recorded but
still in the inbox (the process stopped after the commit) is archived by the next cycle
without loading it again. Loading is an upsert on ``(series_id, ts)`` besides.

``python -m helpers.operate.intake split FILE --parts N`` (or ``--every 7D``) cuts a series
file into chronological files for the inbox, to replay a data set as if it arrived over time.
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core import formatting
from helpers.core.files import write_atomic
from helpers.core.locks import Busy, run_lock
from helpers.core.paths import project_root
from helpers.core.provenance import RUN_TIME_FORMAT, file_sha256, utc_now
from helpers.core.settings import ConfigError, Settings, load_settings
from helpers.data import quality
from helpers.data.ingest import IngestReport, ingest_file, refuse_empty_load
from helpers.data.quality import ROW_KINDS, DataQualityError, FileCheck, SeriesSpec, validate_file
from helpers.warehouse import TABLE_COLUMNS, Warehouse, WarehouseError

#: File names the inbox takes (others, and names starting with a dot, are left alone).
SUFFIXES = (".csv", ".csv.gz", ".parquet")
CRITICALITIES = ("low", "medium", "high")


@dataclass
class FileOutcome:
    """What one cycle did with one inbox file."""

    file_name: str
    file_sha256: str
    outcome: str  # good, mixed, bad; or duplicate (taken in before), resumed (archived after a stop)
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    criticality: str
    archived_as: str
    bad_rows_file: str | None = None
    reason: str | None = None
    page: str | None = None

    def summary(self) -> str:
        what = {"good": "loaded", "mixed": "loaded in part", "bad": "refused", "duplicate": "already taken in",
                "resumed": "archived (taken in by an earlier cycle that stopped)"}[self.outcome]
        line = (f"{self.file_name}: {what}; rows read {self.rows_read} = loaded {self.rows_loaded} + bad "
                f"{self.rows_quarantined}; criticality {self.criticality}; -> {self.archived_as}")
        return line + (f"\n  reason: {self.reason}" if self.reason else "")


@dataclass
class IntakeResult:
    files: list[FileOutcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files left for the next cycle, and why

    @property
    def taken_in(self) -> list[FileOutcome]:
        """Files recorded by this cycle (loaded, in part or not at all)."""
        return [f for f in self.files if f.outcome in ("good", "mixed", "bad")]

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.taken_in)

    def summary(self) -> str:
        if not self.files and not self.skipped:
            return "intake: no new file in the inbox"
        return "\n".join(["intake:"] + ["  " + f.summary() for f in self.files] + ["  left: " + s for s in self.skipped])


class FileChanged(RuntimeError):
    """The file changed while it was being taken in (still being written): nothing of it was recorded."""


def inbox_files(inbox: Path, settle_seconds: float = 0.0) -> list[Path]:
    """The files waiting in ``inbox``, by name: not dot-files (such as a fetch being written), and
    not changed in the last ``settle_seconds`` (a copy still going on)."""
    if not inbox.is_dir():
        return []
    settled = time.time() - settle_seconds
    return sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.name.lower().endswith(SUFFIXES) and p.stat().st_mtime <= settled)


def new_files(warehouse: Warehouse, inbox: Path, settle_seconds: float = 0.0) -> list[Path]:
    """The inbox files whose content has not been taken in yet."""
    return [p for p in inbox_files(inbox, settle_seconds)
            if warehouse.query("select_intake_file", [file_sha256(p)]).empty]


def _unchanged(path: Path, sha: str) -> None:
    """Raise :class:`FileChanged` unless ``path`` still holds the content hashed as ``sha``."""
    try:
        same = file_sha256(path) == sha
    except OSError:
        same = False
    if not same:
        raise FileChanged(f"{path.name} changed while it was being taken in (it is still being written?); "
                          "nothing of it was recorded and the next cycle takes it in. Copy files into the inbox "
                          "under a name starting with a dot, then rename them (mv), so they appear whole.")


def criticality(rows_read: int, rows_loaded: int, errors: dict[str, int], settings: Settings) -> str:
    """low, medium or high (module docstring)."""
    if rows_loaded == 0:
        return "high"
    share = (rows_read - rows_loaded) / rows_read
    if share >= settings.intake_high_share:
        return "high"
    if share >= settings.intake_medium_share or any(errors.get(k) for k in settings.intake_serious_kinds):
        return "medium"
    return "low"


def _archived(settings: Settings, sha: str, name: str, good: bool) -> Path:
    return settings.archive_dir / ("good" if good else "bad") / f"{sha[:12]}-{name}"


def file_stem(name: str) -> str:
    """A file name without its data suffix (``.csv``, ``.csv.gz``, ``.parquet``)."""
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _row(values: dict) -> pd.DataFrame:
    return pd.DataFrame([values], columns=TABLE_COLUMNS["intake_files"])


def _errors(check: FileCheck | None) -> dict[str, int]:
    return {kind: n for kind, n in (check.counts.items() if check else ()) if kind in ROW_KINDS and n}


def _record_refused(warehouse: Warehouse, values: dict) -> None:
    """Commit the record of a file refused whole (nothing of it is loaded)."""
    warehouse.execute("create_stages")
    try:
        warehouse.load_frame("stage_intake_files", _row(values))
        with warehouse.transaction():
            warehouse.execute("insert_intake_files")
    finally:
        warehouse.execute("drop_stages")


def take_in(path: Path, warehouse: Warehouse, settings: Settings, cycle_id: str, sha: str | None = None,
            now: datetime | None = None) -> FileOutcome:
    """Check, load, record and archive one new inbox file (module docstring)."""
    sha = sha or file_sha256(path)
    now = now or utc_now()
    spec = SeriesSpec.from_settings(settings)
    base = {"file_sha256": sha, "file_name": path.name, "series_id": spec.series_id, "cycle_id": cycle_id,
            "processed_at": pd.Timestamp(now)}
    check = None
    try:
        check = validate_file(path, spec, settings.encoding)
        refuse_empty_load(check)
    except DataQualityError as exc:
        errors = _errors(check)
        rows_read = check.rows_read if check else 0
        _unchanged(path, sha)
        values = {**base, "run_id": None, "outcome": "bad", "rows_read": rows_read, "rows_loaded": 0,
                  "rows_quarantined": rows_read, "invalid_share": 1.0, "criticality": "high",
                  "errors": json.dumps(errors), "reason": str(exc),
                  "archived_as": str(_archived(settings, sha, path.name, good=False)), "bad_rows_file": None,
                  "first_ts": pd.NaT, "last_ts": pd.NaT}
        _record_refused(warehouse, values)
        return finish(path, values, warehouse, settings, findings=[f.as_dict() for f in check.findings] if check
                      else [])
    good_rows = ~check.quarantined
    times = check.ts[good_rows].view("datetime64[ns]")
    quarantined = int(check.quarantined.sum())
    errors = _errors(check)
    mixed = quarantined > 0
    values = {**base, "outcome": "mixed" if mixed else "good", "rows_read": check.rows_read,
              "rows_loaded": check.rows_read - quarantined, "rows_quarantined": quarantined,
              "invalid_share": quarantined / check.rows_read,
              "criticality": criticality(check.rows_read, check.rows_read - quarantined, errors, settings),
              "errors": json.dumps(errors), "reason": None,
              "archived_as": str(_archived(settings, sha, path.name, good=not mixed)),
              "bad_rows_file": (str(settings.archive_dir / "bad" / f"{sha[:12]}-{file_stem(path.name)}.bad-rows.csv")
                                if mixed else None),
              "first_ts": pd.Timestamp(times.min()), "last_ts": pd.Timestamp(times.max())}

    def intake_row(report: IngestReport) -> pd.DataFrame:
        _unchanged(path, sha)  # before the commit: a file still being written is not recorded
        values["run_id"] = report.run_id
        return _row(values)

    report = ingest_file(path, spec, warehouse, encoding=settings.encoding, checked=check, intake_row=intake_row)
    return finish(path, values, warehouse, settings, findings=report.findings)


def finish(path: Path, record: dict, warehouse: Warehouse, settings: Settings,
           findings: list[dict] | None = None, outcome: str | None = None) -> FileOutcome:
    """After a file's record is committed: write its bad rows, move it to the archive, write its page.

    Each step is skipped when already done, so this also completes a cycle that stopped half-way.
    """
    archived = Path(record["archived_as"])
    bad_rows = record.get("bad_rows_file")
    if bad_rows and not Path(bad_rows).exists() and record.get("run_id"):
        write_bad_rows(warehouse, record["run_id"], Path(bad_rows))
    if path.exists():
        if archived.exists():  # the same content taken in before: keep the drop, out of the inbox
            archived = settings.archive_dir / "duplicates" / f"{utc_now():{RUN_TIME_FORMAT}}Z-{path.name}"
        archived.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, archived)
    page = settings.archive_dir / "pages" / f"{Path(record['archived_as']).name}.html"
    if findings is not None or not page.exists():
        write_atomic(page, file_page(record, findings or []))
    return FileOutcome(
        file_name=path.name, file_sha256=record["file_sha256"], outcome=outcome or record["outcome"],
        rows_read=int(record["rows_read"]), rows_loaded=int(record["rows_loaded"]),
        rows_quarantined=int(record["rows_quarantined"]), criticality=record["criticality"],
        archived_as=str(archived), bad_rows_file=bad_rows, reason=record.get("reason"), page=str(page))


def write_bad_rows(warehouse: Warehouse, run_id: str, path: Path) -> Path:
    """The quarantined rows of one load as a CSV: the row number in the file, the reasons, then
    the row as read."""
    rows = warehouse.query("select_quarantine", [run_id])
    records = pd.DataFrame([json.loads(text) for text in rows["record"]], dtype=object)
    table = pd.concat([rows[["row_number", "reasons"]].reset_index(drop=True), records], axis=1)
    write_atomic(path, table.to_csv(index=False))
    return path


def file_page(record: dict, findings: list[dict]) -> str:
    """A small HTML page on one inbox file: what was done with it and what the checks found."""
    def cell(value: object) -> str:
        return html.escape(formatting.text(value))  # numbers, dates and missing values as the reports show them

    keys = ("file_name", "file_sha256", "processed_at", "outcome", "criticality", "rows_read", "rows_loaded",
            "rows_quarantined", "invalid_share", "first_ts", "last_ts", "archived_as", "bad_rows_file", "reason")
    shown = {**record, "invalid_share": formatting.percent(record.get("invalid_share"))}
    summary = "".join(f"<tr><th>{k.replace('_', ' ')}</th><td>{cell(shown.get(k))}</td></tr>" for k in keys)
    errors = json.loads(record.get("errors") or "{}")
    error_rows = "".join(f"<tr><td>{cell(k)}</td><td>{v}</td></tr>" for k, v in errors.items()) or \
        "<tr><td colspan=2>no bad rows</td></tr>"
    finding_rows = "".join(
        f"<tr><td>{cell(f['kind'])}</td><td>{cell(f['column'])}</td><td>{f['n_rows']}</td><td>{cell(f['message'])}"
        f"</td><td>{cell('; '.join(f['examples']))}</td></tr>" for f in findings) or \
        "<tr><td colspan=5>none recorded</td></tr>"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Data quality: {cell(record['file_name'])}"
            "</title><style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}</style></head><body>"
            f"<h1>Data quality: {cell(record['file_name'])}</h1><table>{summary}</table>"
            f"<h2>Bad rows by kind of error</h2><table><tr><th>kind</th><th>rows</th></tr>{error_rows}</table>"
            "<h2>What the checks found</h2><table><tr><th>kind</th><th>column</th><th>rows</th><th>what</th>"
            f"<th>examples</th></tr>{finding_rows}</table></body></html>")


def process_inbox(settings: Settings, warehouse: Warehouse, cycle_id: str, now: datetime | None = None) -> IntakeResult:
    """Take in every file of the inbox (module docstring); files are handled one at a time, by name."""
    result = IntakeResult()
    for path in inbox_files(settings.inbox_dir, settings.intake_settle_seconds):
        sha = file_sha256(path)
        recorded = warehouse.query("select_intake_file", [sha])
        if recorded.empty:
            try:
                result.files.append(take_in(path, warehouse, settings, cycle_id, sha, now))
            except FileChanged as exc:
                result.skipped.append(str(exc))
            continue
        record = recorded.iloc[0].to_dict()
        first_time = not Path(record["archived_as"]).exists()
        result.files.append(finish(path, record, warehouse, settings,
                                   outcome="resumed" if first_time else "duplicate"))
    return result


# -- split: a series file cut into chronological files for the inbox -------------------------------
def timed_rows(path: str | Path, timestamp_col: str, encoding: str = "utf-8") -> tuple[pd.DataFrame, pd.Series]:
    """A series file's rows as read, and each row's time; a row whose timestamp does not parse
    takes the time of the row before it (of the first parsed row, at the top)."""
    frame = quality.read_source(path, encoding)
    if timestamp_col not in frame.columns:
        raise DataQualityError(f"{path}: no timestamp column {timestamp_col!r}; columns: {list(frame.columns)} "
                               "(set timestamp_col in env.yaml or HELPERS_TIMESTAMP_COL)")
    return frame, pd.to_datetime(frame[timestamp_col], errors="coerce", format="mixed").ffill().bfill()


def split_rows(frame: pd.DataFrame, times: pd.Series, out_dir: str | Path, stem: str, parts: int | None = None,
               every: str | None = None, after: str | None = None) -> list[tuple[Path, pd.Timestamp]]:
    """Write :func:`timed_rows`' rows as consecutive chronological CSV files ``<stem>-NNN.csv`` in
    ``out_dir`` (see :func:`split_file`); returns each file with the time of its last row, oldest first."""
    if (parts is None) == (every is None):
        raise ValueError("give either parts (a number of files) or every (a pandas offset such as 7D)")
    if after is not None:
        keep = (times > pd.Timestamp(after)).to_numpy()
        frame, times = frame[keep], times[keep]
    if frame.empty:
        raise DataQualityError(f"{stem}: no rows to split" + (f" after {after}" if after else ""))
    if parts is not None:
        if parts < 1:
            raise ValueError(f"parts must be at least 1, got {parts}")
        labels = np.minimum(np.arange(len(frame)) * parts // len(frame), parts - 1)
    else:
        try:
            step = pd.Timedelta(pd.tseries.frequencies.to_offset(every))
        except (ValueError, TypeError):
            raise ValueError(f"every must be a fixed pandas offset such as 1D, 7D or 12h, got {every!r}") from None
        origin = pd.Timestamp(after) if after is not None else times.min()
        labels = ((times - origin) // step).to_numpy()
        labels = np.unique(labels, return_inverse=True)[1]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for label in range(int(labels.max()) + 1):
        target = out_dir / f"{stem}-{label + 1:03d}.csv"
        write_atomic(target, frame[labels == label].to_csv(index=False))
        written.append((target, times[labels == label].max()))
    return written


def split_file(path: str | Path, out_dir: str | Path, timestamp_col: str, parts: int | None = None,
               every: str | None = None, after: str | None = None, encoding: str = "utf-8") -> list[Path]:
    """Cut a series file into consecutive chronological CSV files ``<stem>-NNN.csv`` in ``out_dir``.

    ``parts`` files of equal row counts, or one file per ``every`` (a pandas offset such as
    ``7D``) counted from the first timestamp (or from ``after``, when given: rows at or before
    it are left out). Rows are kept as read, bad ones included; a row whose timestamp does not
    parse goes with the row before it. Returns the files written, oldest first.
    """
    frame, times = timed_rows(path, timestamp_col, encoding)
    return [target for target, _ in split_rows(frame, times, out_dir, file_stem(Path(path).name), parts, every, after)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.operate.intake",
                                     description="Take in the inbox, or split a file into inbox files.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="take in every new file of the inbox (inbox_dir) now")
    split = commands.add_parser("split", help="cut a series file into chronological files")
    split.add_argument("file", type=Path)
    split.add_argument("--out", type=Path, help="folder to write to (default: the inbox, inbox_dir)")
    how = split.add_mutually_exclusive_group(required=True)
    how.add_argument("--parts", type=int, help="this many files of equal row counts")
    how.add_argument("--every", help="one file per period, a pandas offset such as 7D")
    split.add_argument("--after", help="leave out rows at or before this time (e.g. the training data)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "split":
            files = split_file(args.file, args.out or settings.inbox_dir, settings.timestamp_col, args.parts,
                               args.every, args.after, settings.encoding)
            print(f"wrote {len(files)} files: {files[0].name} .. {files[-1].name} in {files[0].parent}")
            return 0
        with run_lock(project_root() / "runs"), Warehouse.from_settings(settings) as warehouse:
            result = process_inbox(settings, warehouse, cycle_id=f"manual-{utc_now():{RUN_TIME_FORMAT}}Z")
    except (ConfigError, DataQualityError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (Busy, WarehouseError) as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return 3
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
