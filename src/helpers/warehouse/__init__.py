"""The warehouse: one interface over DuckDB (default) and Snowflake, with the project's SQL."""

from helpers.warehouse.client import (
    MEASURES, STAGE_TABLES, TABLE_COLUMNS, Warehouse, WarehouseBusy, WarehouseError, sql_statements,
)

__all__ = ["MEASURES", "STAGE_TABLES", "TABLE_COLUMNS", "Warehouse", "WarehouseBusy", "WarehouseError", "sql_statements"]
