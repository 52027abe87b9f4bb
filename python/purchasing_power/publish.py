"""Publish the BI-facing marts to a read-only DuckDB file and to Parquet, atomically.

DuckDB lets one process write a database file, or many processes read it, not both: a
BI tool reading the warehouse would lock ``dbt build`` out, and a build would lock BI
out. So at the end of a successful build the BI-facing marts are copied to a separate
file that BI tools open read-only (``PURCHASING_POWER_BI_DB``; by default
``purchasing_power_bi.duckdb`` beside the warehouse) and to one Parquet file per table
in the folder beside it (``purchasing_power_bi_parquet/``). Each file is written under a
temporary name in its own folder, flushed to disk and renamed over the previous one, so
a reader sees the whole previous version or the whole new one, never a mix, and a build
that fails before this step leaves the last published version in place.

A publication killed midway (SIGKILL, a lost machine) leaves its staged files, as big
as the copy, under hidden names (``.<name>.<publication id>.tmp``, and the DuckDB
file's ``.wal``): the next publication to the same copy removes them before it
starts, and only them. Publications to one copy take turns (``staging.only_writer``
on its Parquet folder), so the staged files of one that runs are never taken for
leftovers.

A table that only grows, such as the score history (one partition per ``as_of``), is
published by partition, so that a build copies what changed rather than the whole
history: its Parquet is a folder with one file per partition, and the new DuckDB file
starts from a copy of the last one, keeping the partitions whose fingerprint (rows,
content, columns, pseudonym key) is unchanged. Each partition file is replaced
atomically; a reader of the folder may see a new partition before the DuckDB file
lists it.

What is published carries no raw text or contact data (``FORBIDDEN_COLUMNS`` stops the
step), and with ``PURCHASING_POWER_PSEUDONYM_KEY`` set, ``user_id`` is replaced in the
published copy by ``HMAC-SHA256(key, user_id)`` in hex: stable across builds for one
key, joinable across the published tables, and not reversible without the key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from purchasing_power import staging
from purchasing_power.warehouse import open_file, query, quote_identifier, relation_query

BI_DATABASE_ENV = "PURCHASING_POWER_BI_DB"
PSEUDONYM_KEY_ENV = "PURCHASING_POWER_PSEUDONYM_KEY"
DEFAULT_BI_DATABASE_NAME = "purchasing_power_bi.duckdb"
BATCH_ROWS = 65_536
# Raw text and contact data never leave the warehouse.
FORBIDDEN_COLUMNS = frozenset(
    {
        "raw_values",
        "review_text",
        "email",
        "phone",
        "phone_number",
        "first_name",
        "last_name",
        "full_name",
        "address",
        "street",
        "postcode",
        "zip_code",
        "ip_address",
    }
)
PUBLICATIONS_SCHEMA = pa.schema(
    [
        ("table_name", pa.string()),
        ("row_count", pa.int64()),
        ("column_count", pa.int32()),
        ("published_at", pa.timestamp("us")),
        ("publication_id", pa.string()),
        ("is_pseudonymised", pa.bool_()),
        ("database_path", pa.string()),
        ("parquet_path", pa.string()),
    ]
)
PUBLICATION_TABLE = "bi_publication"  # in the published file: what was published when
PARTITIONS_SCHEMA = pa.schema(
    [
        ("table_name", pa.string()),
        ("partition_column", pa.string()),
        ("partition_value", pa.string()),
        ("row_count", pa.int64()),
        ("fingerprint", pa.string()),
        ("parquet_path", pa.string()),
        ("publication_id", pa.string()),  # the publication that copied the partition
        ("published_at", pa.timestamp("us")),
    ]
)
PARTITIONS_TABLE = "bi_publication_partitions"  # in the published file: partitions kept or copied
KEY_CHECK = "purchasing-power pseudonym key check"  # its pseudonym tells keys apart
STAGED_SUFFIX = r"\.[0-9a-f]{32}\.tmp"  # a staged file: .<final name>.<publication id>.tmp


@dataclass(frozen=True)
class PublishSettings:
    """Where to publish and whether to pseudonymise ``user_id``."""

    database: Path
    pseudonym_key: bytes | None = None

    @property
    def parquet_dir(self) -> Path:
        return self.database.with_name(f"{self.database.stem}_parquet")

    @classmethod
    def from_environment(
        cls, *, warehouse: Path, environ: Mapping[str, str] | None = None
    ) -> PublishSettings:
        """``$PURCHASING_POWER_BI_DB`` (default: beside ``warehouse``) and the pseudonym key."""
        environ = os.environ if environ is None else environ
        database = environ.get(BI_DATABASE_ENV) or str(
            warehouse.with_name(DEFAULT_BI_DATABASE_NAME)
        )
        key = environ.get(PSEUDONYM_KEY_ENV)
        return cls(database=Path(database), pseudonym_key=key.encode() if key else None)


def pseudonym(user_id: str, *, key: bytes) -> str:
    """The published stand-in for a ``user_id``: HMAC-SHA256 with ``key``, in hex."""
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()


def _pseudonymised(reader: pa.RecordBatchReader, *, key: bytes) -> pa.RecordBatchReader:
    position = reader.schema.get_field_index("user_id")
    schema = reader.schema.set(position, pa.field("user_id", pa.string()))

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            encoded = pc.dictionary_encode(batch.column(position).cast(pa.string()))
            names = pa.array(
                [
                    None if v is None else pseudonym(v, key=key)
                    for v in encoded.dictionary.to_pylist()
                ],
                pa.string(),
            )
            columns = list(batch.columns)
            columns[position] = names.take(encoded.indices)
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _comments(
    session: duckdb.DuckDBPyConnection, schema: str, table: str
) -> tuple[str | None, dict[str, str]]:
    """The table's and its columns' comments in the warehouse (dbt's persisted docs)."""
    table_comment = session.execute(
        "select comment from duckdb_tables() where database_name = current_database()"
        " and schema_name = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    columns = session.execute(
        "select column_name, comment from duckdb_columns() where database_name ="
        " current_database() and schema_name = ? and table_name = ? and comment is not null",
        [schema, table],
    ).fetchall()
    return (table_comment[0][0] if table_comment else None), dict(columns)


def database_path(session: duckdb.DuckDBPyConnection) -> Path:
    """The file of the session's current database (the warehouse)."""
    ((path,),) = session.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchall()
    return Path(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(temporary: Path, final: Path) -> None:
    """Make ``temporary`` read-only, flush it and rename it over ``final`` (atomic)."""
    temporary.chmod(0o444)
    _fsync(temporary)
    os.replace(temporary, final)
    _fsync(final.parent)


@dataclass(frozen=True)
class _Partitions:
    """A mart published by partition: its partitions now, and those the last publication
    already holds unchanged (kept from it rather than copied again)."""

    column: str
    column_type: str  # the column's DuckDB type
    folder: Path  # one Parquet file per partition
    fingerprints: Mapping[str, tuple[int, str]]  # partition value -> (rows, fingerprint)
    kept: Mapping[str, Mapping[str, object]]  # partition value -> its last PARTITIONS row

    @property
    def written(self) -> list[str]:
        return sorted(set(self.fingerprints) - set(self.kept))

    def parquet(self, value: str) -> Path:
        return _partition_file(self.folder, value)

    def where(self, values: Iterable[str]) -> str:
        """SQL that is true for a row of one of the partitions ``values``. They are compared
        in the column's type, so that DuckDB skips row groups by their min and max."""
        listed = ", ".join(f"cast({_quote(value)} as {self.column_type})" for value in values)
        return f"{quote_identifier(self.column)} in ({listed})" if listed else "false"


def _partition_file(folder: Path, value: str) -> Path:
    return folder / f"{quote(value, safe='')}.parquet"


def _fingerprints(
    relation: duckdb.DuckDBPyRelation, *, table: str, column: str, key: bytes | None
) -> dict[str, tuple[int, str]]:
    """Each partition's rows and a fingerprint of its content, columns and pseudonym key:
    equal fingerprints mean the published partition needs no copy."""
    if column not in relation.columns:
        raise ValueError(f"{table} has no column {column!r} to publish it by partition")
    signature = ", ".join(
        f"{name} {kind}" for name, kind in zip(relation.columns, relation.types, strict=True)
    )
    keyed = (
        pseudonym(KEY_CHECK, key=key) if key is not None and "user_id" in relation.columns else ""
    )
    partitions = relation_query(
        relation,
        "partitioned",
        f"select cast({quote_identifier(column)} as varchar), count(*),"
        " sum(hash(*columns(*))::hugeint) from partitioned group by all",
    ).fetchall()
    nulls = [rows for value, rows, _ in partitions if value is None]
    if nulls:
        raise ValueError(
            f"{table} is published by partition of {column!r}, which is null in {nulls[0]} rows"
        )
    return {
        value: (rows, hashlib.sha256(f"{signature}|{keyed}|{rows}|{digest}".encode()).hexdigest())
        for value, rows, digest in partitions
    }


@dataclass(frozen=True)
class _Last:
    """What the published file says of the last publication."""

    partitions: Mapping[tuple[str, str], Mapping[str, object]]  # (table, value) -> its row
    parquet_paths: frozenset[Path]  # each table's Parquet file, or folder by partition


def _rows(connection: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    names, rows = query(connection, sql)
    return [dict(zip(names, row, strict=True)) for row in rows]


def _last_publication(database: Path) -> _Last:
    """The last publication in the file at ``database``: nothing if there is none, or it
    cannot be read (then every partition is copied and no Parquet file removed)."""
    if not database.exists():
        return _Last(partitions={}, parquet_paths=frozenset())
    partitions = []
    try:
        with open_file(database, read_only=True) as last:
            paths = _rows(last, f"select parquet_path from {PUBLICATION_TABLE}")
            tables = {
                row["table_name"] for row in _rows(last, "select table_name from duckdb_tables()")
            }
            if PARTITIONS_TABLE in tables:  # not before tables were published by partition
                partitions = _rows(last, f"select * from {PARTITIONS_TABLE}")
    except duckdb.Error:
        return _Last(partitions={}, parquet_paths=frozenset())
    return _Last(
        partitions={(row["table_name"], row["partition_value"]): row for row in partitions},
        parquet_paths=frozenset(Path(row["parquet_path"]) for row in paths),
    )


def _partitions(
    relation: duckdb.DuckDBPyRelation,
    *,
    table: str,
    column: str,
    key: bytes | None,
    folder: Path,
    last: Mapping[tuple[str, str], Mapping[str, object]],
) -> _Partitions:
    fingerprints = _fingerprints(relation, table=table, column=column, key=key)
    kept = {}
    for value, (_, fingerprint) in fingerprints.items():
        row, parquet = last.get((table, value)), _partition_file(folder, value)
        if (
            row is not None
            and row["fingerprint"] == fingerprint
            and row["parquet_path"] == str(parquet)
            and parquet.is_file()
        ):
            kept[value] = row
    return _Partitions(
        column=column,
        column_type=str(relation.types[relation.columns.index(column)]),
        folder=folder,
        fingerprints=fingerprints,
        kept=kept,
    )


def _keep_only(
    target: duckdb.DuckDBPyConnection, schema: str, plans: Mapping[str, _Partitions]
) -> None:
    """In a copy of the last published file: drop every table but the partitioned ones, and
    their rows but those of the partitions kept."""
    tables = target.execute("select schema_name, table_name from duckdb_tables()").fetchall()
    for table_schema, name in tables:
        table = f"{quote_identifier(table_schema)}.{quote_identifier(name)}"
        plan = plans.get(name) if table_schema == schema else None
        if plan is None or not plan.kept:
            target.execute(f"drop table {table}")
        else:
            target.execute(f"delete from {table} where ({plan.where(plan.kept)}) is not true")


def _insert(
    target: duckdb.DuckDBPyConnection,
    relation: duckdb.DuckDBPyRelation,
    *,
    table: str,
    key: bytes | None,
    create: bool,
    order: str | None = None,
) -> None:
    """Stream ``relation`` into ``table`` of ``target``, pseudonymising ``user_id`` with ``key``,
    in the ``order`` given (SQL; ordered after pseudonymising) if any."""
    reader = relation.to_arrow_reader(BATCH_ROWS)
    if key is not None and "user_id" in relation.columns:
        reader = _pseudonymised(reader, key=key)
    target.register("published_batches", reader)
    rows = "select * from published_batches" + (f" order by {order}" if order else "")
    if create:
        target.execute(f"create table {table} as {rows}")
    else:
        target.execute(f"insert into {table} {rows}")
    target.unregister("published_batches")


def _comment(
    target: duckdb.DuckDBPyConnection,
    session: duckdb.DuckDBPyConnection,
    *,
    schema: str,
    name: str,
    is_pseudonymised: bool,
) -> None:
    """Give the published table the warehouse's table and column comments."""
    table_comment, column_comments = _comments(session, schema, name)
    if is_pseudonymised:
        column_comments["user_id"] = (
            "The user, pseudonymised: HMAC-SHA256 of the warehouse user_id with the "
            "publisher's key, in hex."
        )
    if table_comment:
        target.execute(f"comment on table {schema}.{name} is {_quote(table_comment)}")
    for column, comment in column_comments.items():
        target.execute(f'comment on column {schema}.{name}."{column}" is {_quote(comment)}')


def _remove_stale(
    parquet_dir: Path, last: _Last, current: Iterable[Path], plans: Mapping[str, _Partitions]
) -> None:
    """Remove the Parquet the new publication no longer lists: a table's file or folder
    that the last publication wrote (a table no longer published, or one that changed
    between whole and partitioned), and the files of partitions gone. Only what lies in
    ``parquet_dir`` (a published file copied from elsewhere lists another folder)."""
    for path in last.parquet_paths - set(current):
        if path.parent != parquet_dir:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for plan in plans.values():
        files = {plan.parquet(value) for value in plan.fingerprints}
        for path in plan.folder.glob("*.parquet"):
            if path not in files:
                path.unlink()


def publish(
    session: duckdb.DuckDBPyConnection,
    marts: Mapping[str, duckdb.DuckDBPyRelation],
    *,
    schema: str,
    settings: PublishSettings,
    partitioned_by: Mapping[str, str] | None = None,
) -> pa.Table:
    """Copy ``marts`` (name -> relation of ``session``) to the BI file and Parquet.

    Tables keep their schema, names and persisted comments. Returns one row per table
    published (``PUBLICATIONS_SCHEMA``). Nothing is replaced unless every table was
    written. A mart in ``partitioned_by`` (name -> column) is published by partition of
    that column: one Parquet file per partition in a folder of the table's name, and the
    partitions whose content the last publication already holds are kept from it, not
    copied again (``PARTITIONS_TABLE`` lists them and their fingerprints). Publications
    to one copy take turns, and each first removes what killed ones left staged.
    """
    partitioned_by = dict(partitioned_by or {})
    unknown = sorted(set(partitioned_by) - set(marts))
    if unknown:
        raise ValueError(f"partitioned_by names marts that are not published: {unknown}")
    for name, relation in marts.items():
        forbidden = sorted(FORBIDDEN_COLUMNS & {column.lower() for column in relation.columns})
        if forbidden:
            raise ValueError(f"{schema}.{name} would publish raw text or contact data: {forbidden}")

    parquet_dir = settings.parquet_dir
    parquet_dir.mkdir(parents=True, exist_ok=True)
    # Two builds on one warehouse cannot run (DuckDB locks it), but two warehouses may be
    # given one PURCHASING_POWER_BI_DB: their publications then take turns.
    with staging.only_writer(parquet_dir):
        staging.remove(_leftovers(settings.database, parquet_dir))
        return _publish(session, marts, schema=schema, settings=settings,
                        partitioned_by=partitioned_by)  # fmt: skip


def _leftovers(database: Path, parquet_dir: Path) -> list[Path]:
    """The staged files of publications to ``database`` killed before they ended: its
    staged copy beside it (with DuckDB's ``.wal`` and spill folder ``.tmp``), and staged
    Parquet files in ``parquet_dir`` and its partition folders. Names of that pattern
    only (``.<name>.<32 hex>.tmp``); another file, or another copy's, is never one."""
    staged_database = re.compile(rf"\.{re.escape(database.name)}{STAGED_SUFFIX}(\.wal|\.tmp)?")
    staged_parquet = re.compile(rf"\..+\.parquet{STAGED_SUFFIX}")
    partition_folders = [
        path for path in parquet_dir.iterdir() if path.is_dir() and not path.is_symlink()
    ]
    parquet = staging.leftovers([parquet_dir, *partition_folders], staged_parquet)
    return [
        *staging.leftovers([database.parent], staged_database),
        *(path for path in parquet if not path.is_dir()),
    ]


def _publish(
    session: duckdb.DuckDBPyConnection,
    marts: Mapping[str, duckdb.DuckDBPyRelation],
    *,
    schema: str,
    settings: PublishSettings,
    partitioned_by: Mapping[str, str],
) -> pa.Table:
    """``publish``, once the copy is this publication's alone and cleared of leftovers."""
    published_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    publication_id = uuid.uuid4().hex
    key = settings.pseudonym_key
    database, parquet_dir = settings.database, settings.parquet_dir
    last = _last_publication(database)
    plans = {
        name: _partitions(
            marts[name],
            table=f"{schema}.{name}",
            column=column,
            key=key,
            folder=parquet_dir / name,
            last=last.partitions,
        )
        for name, column in partitioned_by.items()
    }
    plan: _Partitions | None
    for plan in plans.values():
        plan.folder.mkdir(exist_ok=True)
    # Staged under hidden names in the folders they will be renamed in (same file system).
    staged_database = database.with_name(f".{database.name}.{publication_id}.tmp")
    parquet_files = [parquet_dir / f"{name}.parquet" for name in marts if name not in plans] + [
        plan.parquet(value) for plan in plans.values() for value in plan.written
    ]
    staged_parquet = {
        final: final.with_name(f".{final.name}.{publication_id}.tmp") for final in parquet_files
    }
    builds_on_last = any(plan.kept for plan in plans.values())
    rows: list[dict[str, Any]] = []
    partition_rows: list[Mapping[str, object]] = []
    try:
        if builds_on_last:
            shutil.copyfile(database, staged_database)
        with open_file(staged_database, read_only=False) as target:
            if builds_on_last:
                _keep_only(target, schema, plans)
            else:
                target.execute(f"create schema {schema}")
            for name, relation in marts.items():
                table = f"{schema}.{name}"
                is_pseudonymised = key is not None and "user_id" in relation.columns
                plan = plans.get(name)
                if plan is None:
                    _insert(target, relation, table=table, key=key, create=True)
                    parquet_path = parquet_dir / f"{name}.parquet"
                    target.execute(
                        f"copy {table} to {_quote(str(staged_parquet[parquet_path]))}"
                        " (format parquet)"
                    )
                else:
                    # kept partitions are in the copied file: insert only the others, each
                    # partition's rows together and by user, so that DuckDB's zone maps
                    # take a point read of one user's history to few row groups (the API
                    # reads older history so)
                    source = relation.filter(plan.where(plan.written)) if plan.kept else relation
                    order = quote_identifier(plan.column) + (
                        ", user_id" if "user_id" in relation.columns else ""
                    )
                    _insert(target, source, table=table, key=key, create=not plan.kept,
                            order=order)  # fmt: skip
                    parquet_path = plan.folder
                    for value in plan.written:
                        target.execute(
                            f"copy (select * from {table} where"
                            f" {plan.where([value])})"
                            f" to {_quote(str(staged_parquet[plan.parquet(value)]))}"
                            " (format parquet)"
                        )
                    for value, (row_count, fingerprint) in sorted(plan.fingerprints.items()):
                        partition_rows.append(
                            plan.kept.get(value)
                            or {
                                "table_name": table,
                                "partition_column": plan.column,
                                "partition_value": value,
                                "row_count": row_count,
                                "fingerprint": fingerprint,
                                "parquet_path": str(plan.parquet(value)),
                                "publication_id": publication_id,
                                "published_at": published_at,
                            }
                        )
                _comment(target, session, schema=schema, name=name,
                         is_pseudonymised=is_pseudonymised)  # fmt: skip
                ((row_count,),) = target.execute(f"select count(*) from {table}").fetchall()
                rows.append(
                    {
                        "table_name": table,
                        "row_count": row_count,
                        "column_count": len(relation.columns),
                        "published_at": published_at,
                        "publication_id": publication_id,
                        "is_pseudonymised": is_pseudonymised,
                        "database_path": str(database),
                        "parquet_path": str(parquet_path),
                    }
                )
            publications = pa.Table.from_pylist(rows, schema=PUBLICATIONS_SCHEMA)
            target.register("publications", publications)
            target.execute(f"create table {PUBLICATION_TABLE} as select * from publications")
            target.execute(
                f"comment on table {PUBLICATION_TABLE} is 'One row per table of this published "
                "copy: its rows, when and under which publication_id it was published.'"
            )
            target.register(
                "partitions", pa.Table.from_pylist(partition_rows, schema=PARTITIONS_SCHEMA)
            )
            target.execute(f"create table {PARTITIONS_TABLE} as select * from partitions")
            target.execute(
                f"comment on table {PARTITIONS_TABLE} is 'One row per partition of the tables "
                "published by partition: its rows, the fingerprint of its content, and the "
                "publication that copied it (an unchanged partition is kept, not copied again).'"
            )
            target.execute("checkpoint")
        _replace(staged_database, database)
        for final, staged in staged_parquet.items():
            _replace(staged, final)
        _remove_stale(parquet_dir, last, (Path(row["parquet_path"]) for row in rows), plans)
    finally:
        for leftover in (staged_database, *staged_parquet.values()):
            with suppress(FileNotFoundError):
                leftover.unlink()
        with suppress(FileNotFoundError):
            staged_database.with_name(staged_database.name + ".wal").unlink()
    return publications
