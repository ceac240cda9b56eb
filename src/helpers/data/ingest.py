"""Ingest a time-series file into the warehouse: validate, quarantine, upsert, aggregate.

Order of work, chosen so that a failure never leaves the warehouse half-changed:

1. read and validate the file (:mod:`helpers.data.quality`) a chunk of rows at a time,
   keeping only a timestamp, three values and a flag per row; a file that cannot be read, a
   missing required column or a file with no loadable row stops here, before the warehouse
   is opened (:func:`ingest`) or touched (:func:`ingest_file`);
2. stage clean rows (from those arrays), quarantined rows (the file read again, only when
   some are), the run's stats row and the catalog entry in session-temporary tables, a
   chunk at a time;
3. in one transaction: upsert raw rows on ``(series_id, ts)``, rebuild the series' hourly
   and daily aggregates, append the quarantine rows and the stats row.

Command line (also ``helpers-ingest``)::

    python -m helpers.data.ingest --file my.csv --timestamp-col time --target-col load --freq 1h

Unset options come from the project settings (``env.yaml`` / ``HELPERS_*``). Exit status:
0 loaded (possibly with quarantined rows), 2 the file or options were rejected, 3 the
warehouse failed.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from pandas.tseries.offsets import Tick

from helpers.core.settings import ConfigError, Settings, load_settings
from helpers.core.provenance import file_sha256, new_run_id, utc_now
from helpers.data import quality
from helpers.data.quality import ROW_KINDS, DataQualityError, FileCheck, SeriesSpec, ValidationResult, validate_file
from helpers.warehouse import TABLE_COLUMNS, Warehouse, WarehouseBusy, WarehouseError


@dataclass
class IngestReport:
    """What one ingest run did; ``rows_read == rows_loaded + rows_quarantined`` always holds."""

    run_id: str
    series_id: str
    source_file: str
    file_sha256: str
    started_at: datetime
    finished_at: datetime
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_inserted: int
    rows_updated: int
    counts: dict[str, int]
    findings: list[dict[str, Any]] = field(default_factory=list)
    aggregates: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        return json.dumps(data, indent=2)

    def summary(self) -> str:
        lines = [
            f"ingest {self.run_id}: {self.source_file} -> series {self.series_id!r}",
            f"  rows read {self.rows_read} = loaded {self.rows_loaded} + quarantined {self.rows_quarantined}"
            f" (new keys {self.rows_inserted}, replaced {self.rows_updated})",
        ]
        for finding in self.findings:
            lines.append(f"  {finding['kind']:<20} {finding['column']:<15} {finding['n_rows']:>6}  {finding['message']}")
            lines.extend(f"      e.g. {example}" for example in finding["examples"])
        return "\n".join(lines)


def aggregate_grains(freq: str) -> list[str]:
    """The aggregate tables that make sense for data of spacing ``freq`` (none finer than it)."""
    offset = SeriesSpec(series_id="_", timestamp_col="t", target_col="y", freq=freq).offset
    if not isinstance(offset, Tick):
        return []
    grains = []
    if offset.nanos <= pd.Timedelta("1h").value:
        grains.append("hourly")
    if offset.nanos <= pd.Timedelta("1D").value:
        grains.append("daily")
    return grains


def _stage_raw(warehouse: Warehouse, check: FileCheck, spec: SeriesSpec, run_id: str) -> int:
    n_rows = 0
    for clean in check.clean_chunks():
        raw = pd.DataFrame({
            "series_id": spec.series_id,
            "ts": clean["ts"],
            "y": clean["y"],
            "temperature": clean["temperature"],
            "workday": clean["workday"].astype("Int16"),
            "run_id": run_id,
        }, columns=TABLE_COLUMNS["raw_series"])
        n_rows += warehouse.load_frame("stage_raw", raw)
    return n_rows


def _stage_quarantine(warehouse: Warehouse, check: FileCheck, path: str | Path, encoding: str, spec: SeriesSpec,
                      run_id: str, now: datetime) -> int:
    """Read the file again and stage its quarantined rows as read, with their reasons."""
    rows = np.flatnonzero(check.quarantined)
    n_rows = 0
    for part in quality.select_rows(path, encoding, quality.CHUNK_ROWS, rows):
        first = int(part.index[0])
        reasons = check.reasons(first, int(part.index[-1]) + 1)
        table = quality.quarantine_table(part.reset_index(drop=True),
                                         {i: reasons[int(r) - first] for i, r in enumerate(part.index)})
        quarantine = pd.DataFrame({
            "run_id": run_id,
            "series_id": spec.series_id,
            "source_file": check.source,
            "row_number": (part.index.to_numpy() + 1).astype("int32"),
            "reasons": table["reasons"].to_numpy(),
            "record": table["record"].to_numpy(),
            "quarantined_at": pd.Timestamp(now),
        }, columns=TABLE_COLUMNS["quarantine"])
        n_rows += warehouse.load_frame("stage_quarantine", quarantine)
    if n_rows != len(rows):
        raise DataQualityError(f"{check.source}: the file changed while it was being loaded ({len(rows)} rows to "
                               f"quarantine, {n_rows} found when read again); load it again once it is complete")
    return n_rows


def refuse_empty_load(result: ValidationResult | FileCheck) -> None:
    """Raise :class:`DataQualityError` when no row of the file can be loaded, naming why."""
    if result.n_clean:
        return
    reasons = "; ".join(f"{f.message} ({f.n_rows} rows, e.g. {f.examples[0]})" if f.examples else f.message
                        for f in result.findings if f.kind in ROW_KINDS)
    raise DataQualityError(f"{result.source}: none of its {result.rows_read} rows can be loaded: {reasons}; "
                           "fix those rows and load the file again")


def ingest_file(path: str | Path, spec: SeriesSpec, warehouse: Warehouse, run_id: str | None = None,
                encoding: str = "utf-8", checked: FileCheck | None = None,
                intake_row: Callable[[IngestReport], pd.DataFrame] | None = None) -> IngestReport:
    """Validate ``path`` (text in ``encoding`` unless a byte-order mark says otherwise) and load
    it into ``warehouse``; see the module docstring for the order. ``checked`` is the file's
    :func:`~helpers.data.quality.validate_file` result when the caller has it already.

    ``intake_row`` (the inbox's bookkeeping, :mod:`helpers.operate.intake`) makes the
    ``intake_files`` row of this load from its report; the row is committed in the load's own
    transaction, so a file is recorded as taken in exactly when its rows are in."""
    check = checked or validate_file(path, spec, encoding)  # raises before any write
    started = check.started_at
    run_id = run_id or new_run_id(started)
    source = str(path)
    refuse_empty_load(check)
    sha = file_sha256(path)
    grains = aggregate_grains(spec.freq)

    warehouse.execute("create_stages")
    try:
        n_loaded = _stage_raw(warehouse, check, spec, run_id)
        n_quarantined = _stage_quarantine(warehouse, check, path, encoding, spec, run_id, started)
        check.release_rows()  # the rows are staged: leave the memory to the warehouse's transaction
        n_updated = int(warehouse.query("count_existing_keys")["n"].iloc[0])
        counts = check.counts
        finished = utc_now()
        report = IngestReport(
            run_id=run_id, series_id=spec.series_id, source_file=source, file_sha256=sha,
            started_at=started, finished_at=finished, rows_read=check.rows_read,
            rows_loaded=n_loaded, rows_quarantined=n_quarantined, rows_inserted=n_loaded - n_updated,
            rows_updated=n_updated, counts=counts, findings=[f.as_dict() for f in check.findings],
            aggregates=grains,
        )
        dq_row = {
            **{k: getattr(report, k) for k in ("run_id", "series_id", "source_file", "file_sha256", "started_at",
                                               "finished_at", "rows_read", "rows_loaded", "rows_quarantined",
                                               "rows_inserted", "rows_updated")},
            **{kind: counts[kind] for kind in ROW_KINDS + ("out_of_order",)},
            "missing_timestamps": counts["gap"],
            "gap_count": len(check.gaps),
        }
        warehouse.load_frame("stage_dq_runs", pd.DataFrame([dq_row], columns=TABLE_COLUMNS["dq_runs"]))
        catalog = {"series_id": spec.series_id, "freq": spec.freq, "source_file": source,
                   "target_col": spec.target_col, "temperature_col": spec.temperature_col,
                   "workday_col": spec.workday_col, "updated_at": finished}
        warehouse.load_frame("stage_catalog", pd.DataFrame([catalog], columns=TABLE_COLUMNS["series_catalog"]))
        if intake_row is not None:
            warehouse.load_frame("stage_intake_files", intake_row(report))

        with warehouse.transaction():
            warehouse.execute("upsert_raw")
            for grain in grains:
                warehouse.execute(f"refresh_{grain}", [spec.series_id])
            warehouse.execute("insert_quarantine")
            warehouse.execute("insert_dq_run")
            warehouse.execute("upsert_catalog")
            if intake_row is not None:
                warehouse.execute("insert_intake_files")
    finally:
        warehouse.execute("drop_stages")
    return report


def ingest(settings: Settings, run_id: str | None = None) -> IngestReport:
    """Ingest ``settings.source_file`` into the configured warehouse."""
    spec = SeriesSpec.from_settings(settings)
    # Validated before the warehouse is opened for write, so a refused file never waits for
    # it or holds it; staging reads the file again only for quarantined rows.
    check = validate_file(settings.source_file, spec, settings.encoding)
    with Warehouse.from_settings(settings) as warehouse:
        return ingest_file(settings.source_file, spec, warehouse, run_id=run_id, encoding=settings.encoding,
                           checked=check)


def _disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error it arose from, is ENOSPC (DuckDB reports it as text, not errno)."""
    while exc is not None:
        if getattr(exc, "errno", None) == errno.ENOSPC or os.strerror(errno.ENOSPC) in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.data.ingest",
        description="Validate a CSV/Parquet time series and load it into the warehouse. "
                    "Options left out come from env.yaml (or HELPERS_<KEY> variables).",
    )
    options = {
        "--file": ("source_file", "CSV (.csv, .csv.gz) or Parquet file"),
        "--encoding": ("encoding", "text encoding of a CSV without a byte-order mark (default utf-8; e.g. latin-1)"),
        "--series-id": ("series_id", "key of the series in the warehouse"),
        "--timestamp-col": ("timestamp_col", "column with ISO 8601 timestamps"),
        "--target-col": ("target_col", "numeric column to analyse and forecast"),
        "--temperature-col": ("temperature_col", "optional temperature column ('' for none)"),
        "--workday-col": ("workday_col", "optional 0/1 work-day column ('' for none)"),
        "--freq": ("freq", "expected spacing, a pandas alias such as 30min, 1h, 1D"),
        "--target-min": ("target_min", "smallest plausible target ('' for no bound)"),
        "--target-max": ("target_max", "largest plausible target ('' for no bound)"),
        "--backend": ("warehouse_backend", "duckdb or snowflake"),
        "--warehouse": ("warehouse_path", "DuckDB file (duckdb backend)"),
    }
    for flag, (dest, help_text) in options.items():
        parser.add_argument(flag, dest=dest, help=help_text)
    parser.add_argument("--report", type=Path, help="also write the run report as JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = vars(_parser().parse_args(argv))
    report_path = args.pop("report")
    settings = None
    try:
        settings = load_settings(**args)
        report = ingest(settings)
    except (ConfigError, DataQualityError, ValueError) as exc:
        print(f"error: {exc}\nnothing was loaded; the warehouse is unchanged.", file=sys.stderr)
        return 2
    except WarehouseBusy as exc:
        print(f"warehouse busy: {exc}", file=sys.stderr)
        return 3
    except (WarehouseError, OSError) as exc:
        if _disk_full(exc):
            where = settings.warehouse_path if settings else args["warehouse_path"] or "the warehouse"
            print(f"error: the disk holding {where} is full; the load was rolled back and the warehouse holds what "
                  "it held before. Free space on that disk (or point --warehouse / warehouse_path at a disk with "
                  "room) and load the file again.", file=sys.stderr)
            return 3
        if not isinstance(exc, WarehouseError):
            raise
        print(f"warehouse error: {exc}\nwhatever of this load had started was rolled back; the warehouse holds "
              "what it held before.", file=sys.stderr)
        return 3
    print(report.summary())
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(report.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
