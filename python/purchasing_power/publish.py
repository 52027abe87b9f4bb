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
import uuid
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

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


def _copy_mart(
    target: duckdb.DuckDBPyConnection,
    session: duckdb.DuckDBPyConnection,
    relation: duckdb.DuckDBPyRelation,
    *,
    schema: str,
    name: str,
    key: bytes | None,
    parquet: Path,
) -> tuple[int, bool]:
    """Stream one mart into ``target`` (and a Parquet file); its rows, and whether
    ``user_id`` was pseudonymised."""
    reader = relation.to_arrow_reader(BATCH_ROWS)
    is_pseudonymised = key is not None and "user_id" in relation.columns
    if key is not None and is_pseudonymised:
        reader = _pseudonymised(reader, key=key)
    target.register("published_batches", reader)
    target.execute(f"create table {schema}.{name} as select * from published_batches")
    target.unregister("published_batches")

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

    target.execute(f"copy {schema}.{name} to {_quote(str(parquet))} (format parquet)")
    ((rows,),) = target.execute(f"select count(*) from {schema}.{name}").fetchall()
    return rows, is_pseudonymised


def publish(
    session: duckdb.DuckDBPyConnection,
    marts: Mapping[str, duckdb.DuckDBPyRelation],
    *,
    schema: str,
    settings: PublishSettings,
) -> pa.Table:
    """Copy ``marts`` (name -> relation of ``session``) to the BI file and Parquet.

    Tables keep their schema, names and persisted comments. Returns one row per table
    published (``PUBLICATIONS_SCHEMA``). Nothing is replaced unless every table was
    written.
    """
    for name, relation in marts.items():
        forbidden = sorted(FORBIDDEN_COLUMNS & {column.lower() for column in relation.columns})
        if forbidden:
            raise ValueError(f"{schema}.{name} would publish raw text or contact data: {forbidden}")

    published_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    publication_id = uuid.uuid4().hex
    database, parquet_dir = settings.database, settings.parquet_dir
    database.parent.mkdir(parents=True, exist_ok=True)
    parquet_dir.mkdir(parents=True, exist_ok=True)
    # Staged under hidden names in the folders they will be renamed in (same file system).
    staged_database = database.with_name(f".{database.name}.{publication_id}.tmp")
    staged_parquet = {name: parquet_dir / f".{name}.parquet.{publication_id}.tmp" for name in marts}
    rows: list[dict[str, object]] = []
    try:
        with duckdb.connect(str(staged_database)) as target:
            target.execute(f"create schema {schema}")
            for name, relation in marts.items():
                row_count, is_pseudonymised = _copy_mart(
                    target, session, relation, schema=schema, name=name,
                    key=settings.pseudonym_key, parquet=staged_parquet[name],
                )  # fmt: skip
                rows.append(
                    {
                        "table_name": f"{schema}.{name}",
                        "row_count": row_count,
                        "column_count": len(relation.columns),
                        "published_at": published_at,
                        "publication_id": publication_id,
                        "is_pseudonymised": is_pseudonymised,
                        "database_path": str(database),
                        "parquet_path": str(parquet_dir / f"{name}.parquet"),
                    }
                )
            publications = pa.Table.from_pylist(rows, schema=PUBLICATIONS_SCHEMA)
            target.register("publications", publications)
            target.execute(f"create table {PUBLICATION_TABLE} as select * from publications")
            target.execute(
                f"comment on table {PUBLICATION_TABLE} is 'One row per table of this published "
                "copy: its rows, when and under which publication_id it was published.'"
            )
            target.execute("checkpoint")
        _replace(staged_database, database)
        for name, staged in staged_parquet.items():
            _replace(staged, parquet_dir / f"{name}.parquet")
    finally:
        for leftover in (staged_database, *staged_parquet.values()):
            with suppress(FileNotFoundError):
                leftover.unlink()
        with suppress(FileNotFoundError):
            staged_database.with_name(staged_database.name + ".wal").unlink()
    return publications
