"""The one module that talks to the DuckDB warehouse file (the CLI's door in; dbt
Python models get their connection from dbt)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa

DEFAULT_WAREHOUSE = Path("warehouse/purchasing_power.duckdb")


def warehouse_path() -> Path:
    """The warehouse file: ``$PURCHASING_POWER_DB``, else the embedded default."""
    return Path(os.environ.get("PURCHASING_POWER_DB", str(DEFAULT_WAREHOUSE)))


def connect(path: Path | None = None, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    path = path or warehouse_path()
    if read_only and not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run `make demo` or `dbt build` first")
    return duckdb.connect(str(path), read_only=read_only)


def read_table(
    connection: duckdb.DuckDBPyConnection, name: str, *, where: str | None = None
) -> pa.Table:
    """A whole table (``schema.table``), optionally filtered by a SQL condition."""
    relation = connection.table(name)
    if where:
        relation = relation.filter(where)
    return relation.to_arrow_table()


def quote_identifier(name: str) -> str:
    """``name`` as a SQL identifier, double-quoted (a column or table name of any spelling)."""
    return '"' + name.replace('"', '""') + '"'


def query(connection: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of a query."""
    relation = connection.sql(sql)
    if relation is None:
        return [], []
    return relation.columns, relation.fetchall()
