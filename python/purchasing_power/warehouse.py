"""The one module that opens DuckDB connections: to the warehouse file (the CLI's door
in; dbt Python models get their connection from dbt), to other DuckDB files (the
published BI copy and its staged copies) and in memory (DuckDB as a compute engine over
Arrow tables). Other modules call these and work on the connections and relations they
return."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

DEFAULT_WAREHOUSE = Path("warehouse/purchasing_power.duckdb")
# DuckDB's words when another process holds the file: 'IO Error: Could not set lock on
# file "<path>": Conflicting lock is held in <program> (PID <n>). See also ...'
LOCK_ERROR = re.compile(r"Could not set lock on file(?:.*\(PID (?P<pid>\d+)\))?", re.DOTALL)


class WarehouseInUseError(Exception):
    """Another process holds the warehouse file: DuckDB lets one process write it."""

    def __init__(self, path: Path, *, pid: int | None) -> None:
        holder = "likely another dbt build"
        if pid is not None:
            holder = f"PID {pid}, {holder}"
        super().__init__(
            f"The warehouse {path} is in use by another process ({holder}): wait for it "
            "to finish or point PURCHASING_POWER_DB at another file."
        )
        self.path = path
        self.pid = pid


def warehouse_path() -> Path:
    """The warehouse file: ``$PURCHASING_POWER_DB``, else the embedded default."""
    return Path(os.environ.get("PURCHASING_POWER_DB", str(DEFAULT_WAREHOUSE)))


def connect(path: Path | None = None, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """The warehouse (``warehouse_path()`` unless ``path``), read-only unless asked;
    ``FileNotFoundError`` saying what to run where a read-only one does not exist."""
    path = path or warehouse_path()
    if read_only and not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run `make demo` or `dbt build` first")
    return open_file(path, read_only=read_only)


def open_file(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Any DuckDB file (the published BI copy, a staged copy of it), as DuckDB opens it:
    a missing file is created when writable, a ``duckdb.Error`` when read-only."""
    return duckdb.connect(str(path), read_only=read_only)


def in_memory(*, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB of its own in memory (no file): a compute engine over Arrow tables, or
    the reader of a file it attaches. ``threads``: DuckDB's default (every core) unless
    given."""
    return duckdb.connect(config={} if threads is None else {"threads": threads})


def arrow_relation(table: pa.Table) -> duckdb.DuckDBPyRelation:
    """``table`` as a relation of an in-memory DuckDB of its own, to query in SQL."""
    return in_memory().from_arrow(table)


def check_not_in_use(
    path: Path, *, config: Mapping[str, str | int | float | list[str]] | None = None
) -> None:
    """Open the warehouse for writing, as dbt-duckdb does (same ``config``), and close it
    again: raises ``WarehouseInUseError``, naming the holder's PID, where another process
    holds the file; any other error as DuckDB raised it."""
    try:
        duckdb.connect(str(path), read_only=False, config=dict(config or {})).close()
    except duckdb.IOException as error:
        locked = LOCK_ERROR.search(str(error))
        if locked is None:
            raise
        pid = locked.group("pid")
        raise WarehouseInUseError(path, pid=None if pid is None else int(pid)) from None


def read_table(
    connection: duckdb.DuckDBPyConnection, name: str, *, where: str | None = None
) -> pa.Table:
    """A whole table (``schema.table``), optionally filtered by a SQL condition."""
    relation = connection.table(name)
    if where:
        relation = relation.filter(where)
    return relation.to_arrow_table()


def relation_query(
    relation: duckdb.DuckDBPyRelation, name: str, sql: str
) -> duckdb.DuckDBPyRelation:
    """``sql`` over ``relation``, which it reads as the view ``name``."""
    result = relation.query(name, sql)
    if result is None:
        raise ValueError(f"the query over {name} returns no rows: {sql}")
    return result


def quote_identifier(name: str) -> str:
    """``name`` as a SQL identifier, double-quoted (a column or table name of any spelling)."""
    return '"' + name.replace('"', '""') + '"'


def query(
    connection: duckdb.DuckDBPyConnection, sql: str
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of a query."""
    # None for a statement without a result (DuckDB's stub says it never is)
    relation: duckdb.DuckDBPyRelation | None = connection.sql(sql)
    if relation is None:
        return [], []
    return relation.columns, relation.fetchall()
