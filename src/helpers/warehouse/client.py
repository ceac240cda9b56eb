"""One warehouse interface over two backends: embedded DuckDB (default) and Snowflake.

SQL lives in ``helpers/sql/*.sql``, written once in the Snowflake dialect; for DuckDB it
is transpiled by sqlglot. Values are always bound parameters (qmark style, ``?``). Table
and column names never come from user input: a template placeholder such as ``{table}``
accepts only names from :data:`TABLE_COLUMNS` / :data:`MEASURES`, and integer frame sizes
are type- and range-checked.

Snowflake credentials come from the environment or the user's
``~/.snowflake/connections.toml``, never from the repository:

- ``SNOWFLAKE_CONNECTION_NAME``: a named connection in ``connections.toml``; or
- ``SNOWFLAKE_ACCOUNT``, ``SNOWFLAKE_USER`` and one of ``SNOWFLAKE_PASSWORD`` /
  ``SNOWFLAKE_PRIVATE_KEY_FILE`` / ``SNOWFLAKE_AUTHENTICATOR``, with optional
  ``SNOWFLAKE_ROLE``, ``SNOWFLAKE_WAREHOUSE``, ``SNOWFLAKE_DATABASE``, ``SNOWFLAKE_SCHEMA``;
- neither: the connector's default connection from ``connections.toml``.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import sqlglot

from helpers.core.settings import BACKENDS, Settings

SQL_DIR = Path(__file__).resolve().parent / "sql"

#: The allow-list of tables and their columns, in schema order (``sql/schema.sql``).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "raw_series": ("series_id", "ts", "y", "temperature", "workday", "run_id"),
    "hourly_series": (
        "series_id", "ts", "y_mean", "y_sum", "y_min", "y_max", "temperature_mean",
        "temperature_min", "temperature_max", "workday", "n_obs",
    ),
    "daily_series": (
        "series_id", "ts", "y_mean", "y_sum", "y_min", "y_max", "temperature_mean",
        "temperature_min", "temperature_max", "workday", "n_obs",
    ),
    "quarantine": ("run_id", "series_id", "source_file", "row_number", "reasons", "record", "quarantined_at"),
    "dq_runs": (
        "run_id", "series_id", "source_file", "file_sha256", "started_at", "finished_at",
        "rows_read", "rows_loaded", "rows_quarantined", "rows_inserted", "rows_updated",
        "missing_value", "unparseable", "out_of_range", "duplicate_timestamp", "unknown_category",
        "off_frequency", "out_of_order", "missing_timestamps", "gap_count",
    ),
    "series_catalog": (
        "series_id", "freq", "source_file", "target_col", "temperature_col", "workday_col", "updated_at",
    ),
    "ab_users": ("experiment_id", "user_id", "variant", "assigned_at", "converted", "revenue", "run_id"),
    "ab_experiments": ("experiment_id", "control", "description", "source", "updated_at", "allocation",
                       "baseline_rate"),
    "intake_files": ("file_sha256", "file_name", "series_id", "cycle_id", "run_id", "processed_at", "outcome",
                     "rows_read", "rows_loaded", "rows_quarantined", "invalid_share", "criticality", "errors",
                     "reason", "archived_as", "bad_rows_file", "first_ts", "last_ts"),
    "forecast_log": ("prediction_id", "source", "series_id", "issued_at", "model", "model_version", "fitted_until",
                     "target_date", "horizon_step", "forecast", "lower_80", "upper_80", "lower_95", "upper_95"),
    "alerts": ("alert_id", "condition", "severity", "opened_at", "last_seen_at", "cleared_at", "message",
               "delivered"),
    "cycles": ("cycle_id", "started_at", "finished_at", "status", "files_new", "rows_loaded", "forecasts_logged",
               "note"),
    "model_decisions": ("decision_id", "series_id", "registered_model", "decided_at", "outcome", "triggered_by",
                        "red_signals", "champion_version", "challenger_version", "champion_model", "challenger_model",
                        "champion_mae", "challenger_mae", "champion_rmse", "challenger_rmse", "champion_coverage_80",
                        "challenger_coverage_80", "champion_coverage_95", "challenger_coverage_95", "margin", "folds",
                        "horizon_days", "cutoffs", "message", "delivered"),
}
#: Staging tables (``sql/create_stages.sql``) mirror a permanent table's columns.
STAGE_TABLES: dict[str, str] = {
    "stage_raw": "raw_series",
    "stage_quarantine": "quarantine",
    "stage_dq_runs": "dq_runs",
    "stage_catalog": "series_catalog",
    "stage_ab_users": "ab_users",
    "stage_ab_experiments": "ab_experiments",
    "stage_intake_files": "intake_files",
    "stage_forecast_log": "forecast_log",
    "stage_alerts": "alerts",
}
#: Aggregate columns a window query may read.
MEASURES = frozenset({"y_mean", "y_sum", "y_min", "y_max", "temperature_mean"})
_IDENTIFIER_SLOTS = {"table": frozenset(TABLE_COLUMNS), "measure": MEASURES}
_INTEGER_SLOTS = {"window_preceding": (0, 10_000), "season": (1, 10_000)}
_TIMESTAMP_COLUMNS = ("ts", "started_at", "finished_at", "quarantined_at", "updated_at", "assigned_at", "day",
                      "first_assigned", "last_assigned", "processed_at", "first_ts", "last_ts", "issued_at",
                      "fitted_until", "target_date", "opened_at", "last_seen_at", "cleared_at", "decided_at")


class WarehouseError(RuntimeError):
    """The warehouse could not be reached or a statement failed; the message says which."""


class WarehouseBusy(WarehouseError):
    """Another process held the DuckDB file for longer than the wait allowed; nothing was done."""


#: Seconds to wait for another process's lock on the DuckDB file (setting ``warehouse_wait_seconds``).
DEFAULT_WAIT_SECONDS = 60.0
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def lock_holder(message: str) -> str | None:
    """``"PID 123 (python -m helpers.app.pipeline build)"`` from DuckDB's lock-conflict message,
    or None when the message is not a lock conflict."""
    match = _LOCK_HOLDER.search(message)
    if not match:
        return None
    pid = match["pid"]
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:  # gone already, or no /proc: the program DuckDB named
        command = match["program"]
    return f"PID {pid} ({command or match['program']})"


#: DuckDB's own memory cap per connection (its default is 80% of the machine's memory): a
#: large load spills to a temporary folder beside the file instead of growing the process.
DUCKDB_MEMORY_LIMIT = "750MB"


def _connect_duckdb(path: Path, read_only: bool, wait_seconds: float, say: Callable[[str], None] | None) -> Any:
    """``duckdb.connect``, waiting while another process holds the file.

    DuckDB lets one process write a file, or any number read it, never both: a connection
    that finds the file locked fails at once. This retries with a growing pause (50 ms up to
    1 s) for ``wait_seconds``, says once that it is waiting and for whom, then raises
    :class:`WarehouseBusy` naming the holder. Other errors are not retried.
    """
    import duckdb

    deadline = time.monotonic() + wait_seconds
    pause, waiting = 0.05, False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config={"memory_limit": DUCKDB_MEMORY_LIMIT})
        except duckdb.Error as exc:
            holder = lock_holder(str(exc))
            if holder is None:
                raise WarehouseError(f"cannot open DuckDB warehouse {path}: {exc}") from exc
            if time.monotonic() + pause > deadline:
                raise WarehouseBusy(
                    f"the warehouse {path} is in use by {holder} and stayed so for {wait_seconds:g} s; nothing was "
                    "done. Run again when it has finished, or wait longer (set warehouse_wait_seconds in env.yaml "
                    "or HELPERS_WAREHOUSE_WAIT_SECONDS)") from exc
            if not waiting:
                (say or _to_stderr)(f"waiting up to {wait_seconds:g} s for the warehouse {path}: in use by {holder}")
                waiting = True
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _render_template(text: str, slots: dict[str, Any]) -> str:
    """Fill ``{name}`` slots, each checked against its allow-list or integer range."""
    values: dict[str, str] = {}
    for name, value in slots.items():
        if name in _IDENTIFIER_SLOTS:
            allowed = _IDENTIFIER_SLOTS[name]
            if value not in allowed:
                raise ValueError(f"{name} {value!r} is not allowed; choose one of {sorted(allowed)}")
            values[name] = value
        elif name in _INTEGER_SLOTS:
            low, high = _INTEGER_SLOTS[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
            values[name] = str(value)
        else:
            raise ValueError(f"unknown template slot {name!r}; slots: {sorted(_IDENTIFIER_SLOTS | _INTEGER_SLOTS)}")
    return text.format_map(values)


@lru_cache(maxsize=256)
def _statements(name: str, dialect: str, slots: tuple[tuple[str, Any], ...]) -> tuple[str, ...]:
    path = SQL_DIR / f"{name}.sql"
    if not path.exists():
        available = sorted(p.stem for p in SQL_DIR.glob("*.sql"))
        raise ValueError(f"no SQL file {name!r}; available: {available}")
    text = path.read_text()
    if slots:
        text = _render_template(text, dict(slots))
    parsed = sqlglot.parse(text, read="snowflake")
    return tuple(statement.sql(dialect=dialect, comments=False) for statement in parsed if statement is not None)


def sql_statements(name: str, dialect: str = "duckdb", **slots: Any) -> tuple[str, ...]:
    """The statements of ``sql/<name>.sql`` in ``dialect``, template slots filled and checked."""
    return _statements(name, dialect, tuple(sorted(slots.items())))


def _snowflake_connect_kwargs(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Connector arguments from the environment only (see the module docstring)."""
    env = os.environ if environ is None else environ
    kwargs: dict[str, Any] = {"paramstyle": "qmark"}
    if env.get("SNOWFLAKE_CONNECTION_NAME"):
        kwargs["connection_name"] = env["SNOWFLAKE_CONNECTION_NAME"]
    for key in ("account", "user", "password", "authenticator", "role", "warehouse", "database", "schema",
                "private_key_file"):
        value = env.get(f"SNOWFLAKE_{key.upper()}")
        if value:
            kwargs[key] = value
    return kwargs


class Warehouse:
    """A connection plus the project's SQL. Use as a context manager, or call :meth:`close`."""

    def __init__(self, connection: Any, backend: str, location: str) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self._conn = connection
        self.backend = backend
        self.location = location
        self.dialect = backend
        self._in_transaction = False

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, backend: str = "duckdb", path: str | Path | None = None, read_only: bool = False,
             wait_seconds: float = DEFAULT_WAIT_SECONDS, say: Callable[[str], None] | None = None) -> Warehouse:
        """Connect and make sure the schema exists (except read-only DuckDB connections).

        A DuckDB file another process holds is waited for, up to ``wait_seconds`` (see
        :func:`_connect_duckdb`); ``say`` gets the one line saying so (default: stderr).
        """
        if backend == "duckdb":
            import duckdb

            if path is None:
                raise ValueError("the duckdb backend needs a database file path (setting warehouse_path)")
            path = Path(path)
            if read_only and not path.exists():
                raise WarehouseError(
                    f"no warehouse at {path}: run the ingest first (make run, or python -m helpers.data.ingest)"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            warehouse = cls(_connect_duckdb(path, read_only, wait_seconds, say), "duckdb", str(path))
        elif backend == "snowflake":
            import snowflake.connector

            kwargs = _snowflake_connect_kwargs()
            try:
                conn = snowflake.connector.connect(**kwargs)
            except snowflake.connector.Error as exc:
                raise WarehouseError(
                    "cannot connect to Snowflake with the settings from the environment / "
                    f"~/.snowflake/connections.toml: {exc}"
                ) from exc
            where = kwargs.get("connection_name") or kwargs.get("account") or "default connection"
            warehouse = cls(conn, "snowflake", f"snowflake:{where}")
        else:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if not read_only:
            warehouse.execute("schema")
        return warehouse

    @classmethod
    def from_settings(cls, settings: Settings, read_only: bool = False) -> Warehouse:
        return cls.open(settings.warehouse_backend, settings.warehouse_path, read_only=read_only,
                        wait_seconds=settings.warehouse_wait_seconds)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- running SQL -----------------------------------------------------------------------
    def _run(self, statement: str, params: Sequence[Any]) -> Any:
        try:
            if self.backend == "duckdb":
                return self._conn.execute(statement, list(params))
            cursor = self._conn.cursor()
            cursor.execute(statement, tuple(params) if params else None)
            return cursor
        except Exception as exc:  # both drivers raise their own hierarchies
            raise WarehouseError(f"{self.backend} statement failed: {exc}\n{statement}") from exc

    def execute(self, name: str, params: Sequence[Any] = (), **slots: Any) -> None:
        """Run every statement of ``sql/<name>.sql``, binding ``params`` to each of them."""
        statements = sql_statements(name, self.dialect, **slots)
        for statement in statements:
            self._run(statement, params)

    def query(self, name: str, params: Sequence[Any] = (), **slots: Any) -> pd.DataFrame:
        """Run the one ``SELECT`` in ``sql/<name>.sql`` and return its rows (lower-case columns)."""
        statements = sql_statements(name, self.dialect, **slots)
        if len(statements) != 1:
            raise ValueError(f"{name}.sql must hold exactly one query, found {len(statements)}")
        result = self._run(statements[0], params)
        frame = result.df() if self.backend == "duckdb" else result.fetch_pandas_all()
        frame.columns = [str(c).lower() for c in frame.columns]
        for column in _TIMESTAMP_COLUMNS:
            if column in frame.columns:
                frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
        return frame

    def read_series(self, table: str, series_id: str) -> pd.DataFrame:
        """All rows of one series from an allow-listed table, oldest first."""
        return self.query("select_series", [series_id], table=table)

    def load_frame(self, table: str, frame: pd.DataFrame) -> int:
        """Bulk-insert ``frame`` into a staging table; its columns must match the allow-list."""
        if table not in STAGE_TABLES:
            raise ValueError(f"bulk loads go to a staging table, one of {sorted(STAGE_TABLES)}; got {table!r}")
        columns = TABLE_COLUMNS[STAGE_TABLES[table]]
        if tuple(frame.columns) != columns:
            raise ValueError(f"{table} expects columns {list(columns)}, got {list(frame.columns)}")
        if frame.empty:
            return 0
        if self.backend == "duckdb":
            self._conn.register("_frame_to_load", frame)
            try:
                self._conn.execute(f"INSERT INTO {table} SELECT * FROM _frame_to_load")
            finally:
                self._conn.unregister("_frame_to_load")
        else:
            # Looked up at call time so an emulator that patches the module (fakesnow) is used.
            from snowflake.connector import pandas_tools

            upper = frame.rename(columns=str.upper)
            ok, _, n_rows, _ = pandas_tools.write_pandas(
                self._conn, upper, table.upper(), auto_create_table=False, quote_identifiers=False,
                use_logical_type=True,
            )
            if not ok or n_rows != len(frame):
                raise WarehouseError(f"write_pandas loaded {n_rows} of {len(frame)} rows into {table}")
        return len(frame)

    @contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """All or nothing: statements inside either all commit or all roll back."""
        if self._in_transaction:
            raise WarehouseError("transactions do not nest")
        self._run("BEGIN", ())
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self._run("ROLLBACK", ())
            raise
        else:
            self._run("COMMIT", ())
        finally:
            self._in_transaction = False

    def table_counts(self) -> dict[str, int]:
        """Row count of every permanent table; handy for proving a load changed nothing."""
        counts = {}
        for table in TABLE_COLUMNS:
            counts[table] = int(self.query("count_rows", table=table)["n"].iloc[0])
        return counts
