"""warehouse: the one module that opens DuckDB connections."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from purchasing_power import warehouse


def test_an_arrow_table_is_queried_as_a_relation_of_its_own() -> None:
    relation = warehouse.arrow_relation(pa.table({"amount": [1.5, 2.5, 4.0]}))
    summed = warehouse.relation_query(relation, "rows", "select sum(amount) as total from rows")
    assert summed.fetchall() == [(8.0,)]


def test_an_in_memory_database_takes_its_thread_count() -> None:
    with warehouse.in_memory(threads=1) as connection:
        assert warehouse.query(connection, "select current_setting('threads') as threads") == (
            ["threads"],
            [(1,)],
        )


def test_a_file_is_created_when_writable_and_refused_when_read_only_and_missing(
    tmp_path: Path,
) -> None:
    with pytest.raises(duckdb.Error):
        warehouse.open_file(tmp_path / "missing.duckdb", read_only=True)
    path = tmp_path / "copy.duckdb"
    with warehouse.open_file(path, read_only=False) as connection:
        connection.execute("create table scores as select 1 as user_id")
    with warehouse.open_file(path, read_only=True) as connection:
        assert warehouse.read_table(connection, "scores").to_pylist() == [{"user_id": 1}]


def test_a_missing_warehouse_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run `make demo` or `dbt build` first"):
        warehouse.connect(tmp_path / "none.duckdb")
