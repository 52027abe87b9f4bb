"""The dbt-duckdb plugin: a second build on a warehouse another process holds says why,
and what to do, in one line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from dbt_runner import make_project
from purchasing_power.dbt_plugin import Plugin
from purchasing_power.warehouse import WarehouseInUseError, check_not_in_use

# Another process that opens the warehouse for writing and holds it until told to go.
HOLDER = """
import sys

import duckdb

with duckdb.connect(sys.argv[1]) as connection:
    connection.execute("create table held as select 1 as n")
    print("holding", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A warehouse file and the PID of the process that holds it."""
    warehouse = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(warehouse)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "holding\n"
        yield warehouse, holder.pid
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0


def _message(warehouse: Path, pid: int) -> str:
    return (
        f"The warehouse {warehouse} is in use by another process (PID {pid}, likely another"
        " dbt build): wait for it to finish or point PURCHASING_POWER_DB at another file."
    )


def test_a_held_warehouse_is_named_with_its_holder(held: tuple[Path, int]) -> None:
    warehouse, pid = held
    with pytest.raises(WarehouseInUseError) as raised:
        check_not_in_use(warehouse)
    assert str(raised.value) == _message(warehouse, pid)
    assert raised.value.pid == pid


def test_a_free_warehouse_passes_and_other_errors_stay_duckdbs(tmp_path: Path) -> None:
    free = tmp_path / "free.duckdb"
    check_not_in_use(free)
    with duckdb.connect(str(free)) as connection:  # closed again: another can open it
        assert connection.execute("select 1").fetchall() == [(1,)]
    with pytest.raises(duckdb.IOException, match="No such file or directory"):
        check_not_in_use(tmp_path / "missing" / "warehouse.duckdb")


def test_the_plugin_makes_a_missing_warehouse_folder(tmp_path: Path) -> None:
    # `make clean` removes warehouse/, and PURCHASING_POWER_DB may name a new folder
    warehouse = tmp_path / "new" / "folder" / "warehouse.duckdb"
    Plugin("purchasing_power", {}).update_connection_config(
        SimpleNamespace(path=str(warehouse)), {}
    )
    assert warehouse.parent.is_dir()
    with duckdb.connect(str(warehouse)) as connection:  # checked, and let go again
        assert connection.execute("select 1").fetchall() == [(1,)]


@pytest.mark.slow
def test_dbt_build_on_a_held_warehouse_says_why_first(
    held: tuple[Path, int], tmp_path: Path
) -> None:
    warehouse, pid = held
    project = make_project(tmp_path)
    assert project.warehouse == warehouse

    result = project.run("build", vars={"raw_path": str(tmp_path / "raw")}, check=False)

    output = result.stdout + result.stderr
    lines = [line.split("  ", 1)[-1] for line in output.splitlines()]  # without the time
    first_error = next(i for i, line in enumerate(lines) if "error" in line.lower())
    assert result.returncode == 2, output
    assert lines[first_error : first_error + 2] == [
        "Encountered an error:",
        _message(warehouse, pid),
    ], output
    assert "Traceback" not in output
    assert len(lines) <= 12, output
