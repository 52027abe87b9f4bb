"""The project's dbt-duckdb plugin (``plugins:`` in profiles.yml): one line, and no
traceback, when ``dbt build`` finds the warehouse held by another process; and the
warehouse's folder made where it is missing.

DuckDB lets one process write a database file. A second build on one warehouse failed
in dbt-duckdb's ``duckdb.connect`` with DuckDB's lock error, and dbt printed some 225
lines of traceback with it: dbt prints a traceback for an error that is not one of its
own, and dbt-duckdb's error handler opened the connection again while handling the
first (a second lock error, chained to it). dbt-duckdb calls each plugin's
``update_connection_config`` just before it connects: there the plugin opens the
warehouse first, the same way, and turns a lock error into a dbt error whose text is
the cause and the remedy, which dbt prints under "Encountered an error:" alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from dbt_common.exceptions import DbtBaseException

from purchasing_power.warehouse import WarehouseInUseError, check_not_in_use

IN_MEMORY = ":memory:"


class WarehouseInUse(DbtBaseException):
    """A dbt error (printed as its text, without a traceback) for a held warehouse. Not a
    RuntimeError, which dbt-duckdb would wrap in a "Database Error" heading."""


class Plugin(BasePlugin):
    def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
        if creds.path == IN_MEMORY:
            return
        warehouse = Path(creds.path)
        # a new PURCHASING_POWER_DB, or the repo's warehouse/ after `make clean`: DuckDB
        # creates the file but not its folder
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        try:
            check_not_in_use(warehouse, config=config)
        except WarehouseInUseError as error:
            raise WarehouseInUse(str(error)) from None
