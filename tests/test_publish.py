"""Publishing the BI copy: read-only DuckDB file and Parquet, atomic, pseudonymised on request."""

from __future__ import annotations

import hashlib
import hmac
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from purchasing_power.publish import (
    PARTITIONS_TABLE,
    PUBLICATION_TABLE,
    PublishSettings,
    database_path,
    pseudonym,
    publish,
)

KEY = b"test-key"


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A warehouse with two marts about users and one without, with persisted comments."""
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute(
        """
        create schema marts;
        create table marts.scores as
            select 'u' || i as user_id, i * 10.0 as power_index, date '2026-01-01' as as_of
            from range(1, 6) as t(i);
        create table marts.changes as
            select 'u' || i as user_id, 'down' as direction from range(1, 3) as t(i);
        create table marts.summary as select 5 as users;
        comment on table marts.scores is 'One row per scored user.';
        comment on column marts.scores.power_index is 'It''s 0-100.';
        """
    )
    yield connection
    connection.close()


def _marts(connection: duckdb.DuckDBPyConnection, *names: str) -> dict:
    return {name: connection.table(f"marts.{name}") for name in names}


def _settings(connection: duckdb.DuckDBPyConnection, key: bytes | None = None) -> PublishSettings:
    return PublishSettings.from_environment(
        warehouse=database_path(connection),
        environ={"PURCHASING_POWER_PSEUDONYM_KEY": key.decode()} if key else {},
    )


def _read(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_publishes_a_read_only_copy_and_parquet_files(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    settings = _settings(warehouse)
    assert settings.database == tmp_path / "purchasing_power_bi.duckdb"
    published = publish(
        warehouse, _marts(warehouse, "scores", "summary"), schema="marts", settings=settings
    )
    assert published.column("table_name").to_pylist() == ["marts.scores", "marts.summary"]
    assert published.column("row_count").to_pylist() == [5, 1]
    assert set(published.column("is_pseudonymised").to_pylist()) == {False}

    rows = _read(settings.database, "select * from marts.scores order by user_id")
    assert rows == warehouse.execute("select * from marts.scores order by user_id").fetchall()
    comments = _read(
        settings.database,
        "select comment from duckdb_columns() where table_name = 'scores'"
        " and column_name = 'power_index'",
    )
    assert comments == [("It's 0-100.",)]
    assert _read(
        settings.database, "select comment from duckdb_tables() where table_name = 'scores'"
    ) == [("One row per scored user.",)]
    assert _read(settings.database, f"select table_name, row_count from {PUBLICATION_TABLE}") == [
        ("marts.scores", 5),
        ("marts.summary", 1),
    ]

    parquet = pq.read_table(settings.parquet_dir / "scores.parquet").sort_by("user_id")
    assert parquet.column("power_index").to_pylist() == [10.0, 20.0, 30.0, 40.0, 50.0]
    for path in (settings.database, *settings.parquet_dir.iterdir()):
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), path
    names = [p.name for p in [*tmp_path.iterdir(), *settings.parquet_dir.iterdir()]]
    assert not [name for name in names if name.startswith(".")]  # staged files are hidden


def test_pseudonymised_user_ids_are_keyed_hashes_that_still_join(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    settings = _settings(warehouse, KEY)
    published = publish(
        warehouse, _marts(warehouse, "scores", "changes", "summary"), schema="marts",
        settings=settings,
    )  # fmt: skip
    assert published.column("is_pseudonymised").to_pylist() == [True, True, False]
    expected = hmac.new(KEY, b"u1", hashlib.sha256).hexdigest()
    assert pseudonym("u1", key=KEY) == expected
    ids = {row[0] for row in _read(settings.database, "select user_id from marts.scores")}
    assert ids == {pseudonym(f"u{i}", key=KEY) for i in range(1, 6)}
    assert not ids & {f"u{i}" for i in range(1, 6)}
    joined = _read(
        settings.database,
        "select count(*) from marts.changes inner join marts.scores using (user_id)",
    )
    assert joined == [(2,)]
    parquet_ids = set(
        pq.read_table(settings.parquet_dir / "changes.parquet")["user_id"].to_pylist()
    )
    assert parquet_ids == {pseudonym("u1", key=KEY), pseudonym("u2", key=KEY)}
    assert pseudonym("u1", key=b"another key") != expected


def test_raw_text_and_contact_data_are_refused(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    warehouse.execute(
        "create table marts.reviews as select 'u1' as user_id, 'great' as review_text"
    )
    settings = _settings(warehouse)
    with pytest.raises(ValueError, match=r"marts\.reviews would publish .*review_text"):
        publish(
            warehouse, _marts(warehouse, "scores", "reviews"), schema="marts", settings=settings
        )
    assert not settings.database.exists()


def test_a_failed_publication_leaves_the_previous_one_in_place(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    settings = _settings(warehouse)
    first = publish(warehouse, _marts(warehouse, "scores"), schema="marts", settings=settings)
    parquet_before = (settings.parquet_dir / "scores.parquet").read_bytes()
    warehouse.execute("create view marts.broken as select error('the build broke') as user_id")
    with pytest.raises(duckdb.Error, match="the build broke"):
        publish(warehouse, _marts(warehouse, "scores", "broken"), schema="marts", settings=settings)
    (publication_id,) = {
        row[0]
        for row in _read(settings.database, f"select publication_id from {PUBLICATION_TABLE}")
    }
    assert publication_id == first.column("publication_id")[0].as_py()
    assert (settings.parquet_dir / "scores.parquet").read_bytes() == parquet_before
    assert not (settings.parquet_dir / "broken.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_reader_keeps_its_version_while_a_new_one_replaces_it(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    settings = _settings(warehouse)
    publish(warehouse, _marts(warehouse, "scores"), schema="marts", settings=settings)
    with duckdb.connect(str(settings.database), read_only=True) as reader:
        warehouse.execute("insert into marts.scores values ('u6', 60.0, date '2026-01-01')")
        publish(warehouse, _marts(warehouse, "scores"), schema="marts", settings=settings)
        assert reader.execute("select count(*) from marts.scores").fetchall() == [(5,)]
    assert _read(settings.database, "select count(*) from marts.scores") == [(6,)]


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    default = PublishSettings.from_environment(warehouse=warehouse, environ={})
    assert default == PublishSettings(database=tmp_path / "wh" / "purchasing_power_bi.duckdb")
    assert default.parquet_dir == tmp_path / "wh" / "purchasing_power_bi_parquet"
    chosen = PublishSettings.from_environment(
        warehouse=warehouse,
        environ={
            "PURCHASING_POWER_BI_DB": str(tmp_path / "bi" / "shop.duckdb"),
            "PURCHASING_POWER_PSEUDONYM_KEY": "k",
        },
    )
    assert chosen == PublishSettings(database=tmp_path / "bi" / "shop.duckdb", pseudonym_key=b"k")
    assert chosen.parquet_dir == tmp_path / "bi" / "shop_parquet"


def _history(connection: duckdb.DuckDBPyConnection) -> None:
    """Five users' scores on three days: a table published by partition of as_of."""
    connection.execute(
        """
        create or replace table marts.history as
            select
                'u' || i as user_id, date '2026-01-01' + d::int as as_of,
                i * 10.0 + d as power_index
            from range(1, 6) as t(i), range(3) as s(d);
        comment on table marts.history is 'One row per user and as_of.';
        """
    )


def _publish_history(connection: duckdb.DuckDBPyConnection, settings: PublishSettings) -> pa.Table:
    return publish(
        connection, _marts(connection, "scores", "history"), schema="marts", settings=settings,
        partitioned_by={"history": "as_of"},
    )  # fmt: skip


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Each file of ``folder`` by name: its inode and modification time (rewritten or not)."""
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in folder.iterdir()}


def _partitions_published(path: Path) -> dict[str, str]:
    return dict(_read(path, f"select partition_value, publication_id from {PARTITIONS_TABLE}"))


def _assert_stored_by_partition_then_user(path: Path) -> None:
    """In the published file, each as_of's rows lie together, by user_id (as stored)."""
    stored = _read(path, "select as_of, user_id from marts.history order by rowid")
    runs = [as_of for number, (as_of, _) in enumerate(stored)
            if number == 0 or stored[number - 1][0] != as_of]  # fmt: skip
    assert len(runs) == len(set(runs)), runs
    for as_of in runs:
        users = [user for day, user in stored if day == as_of]
        assert users == sorted(users), (as_of, users)


def test_a_partitioned_table_copies_only_the_partitions_that_changed(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    _history(warehouse)
    warehouse.execute(  # stored in neither as_of nor user order
        "create or replace table marts.history as select * from marts.history"
        " order by hash(user_id || as_of::varchar);"
        " comment on table marts.history is 'One row per user and as_of.'"
    )
    settings = _settings(warehouse)
    folder = settings.parquet_dir / "history"
    first = _publish_history(warehouse, settings).column("publication_id")[0].as_py()
    _assert_stored_by_partition_then_user(settings.database)
    assert sorted(_files(folder)) == [
        "2026-01-01.parquet",
        "2026-01-02.parquet",
        "2026-01-03.parquet",
    ]
    before = _files(folder)

    warehouse.execute(
        """
        delete from marts.history where as_of = date '2026-01-01';
        update marts.history set power_index = 99
            where user_id = 'u3' and as_of = date '2026-01-02';
        insert into marts.history select user_id, date '2026-01-04', power_index + 1
            from marts.history where as_of = date '2026-01-03';
        """
    )
    published = _publish_history(warehouse, settings)
    second = published.column("publication_id")[0].as_py()

    query = "select * from marts.history order by as_of, user_id"
    assert _read(settings.database, query) == warehouse.execute(query).fetchall()
    _assert_stored_by_partition_then_user(settings.database)
    assert published.column("row_count").to_pylist() == [5, 15]
    assert published.column("parquet_path").to_pylist()[1] == str(folder)
    assert _partitions_published(settings.database) == {
        "2026-01-02": second,  # changed: copied again
        "2026-01-03": first,  # unchanged: kept from the first publication
        "2026-01-04": second,  # new
    }
    after = _files(folder)
    assert sorted(after) == ["2026-01-02.parquet", "2026-01-03.parquet", "2026-01-04.parquet"]
    assert after["2026-01-03.parquet"] == before["2026-01-03.parquet"]
    assert after["2026-01-02.parquet"] != before["2026-01-02.parquet"]
    with duckdb.connect() as reader:
        parquet = reader.execute(
            f"select * from read_parquet('{folder}/*.parquet') order by as_of, user_id"
        ).fetchall()
    assert parquet == warehouse.execute(query).fetchall()
    assert _read(
        settings.database, "select comment from duckdb_tables() where table_name = 'history'"
    ) == [("One row per user and as_of.",)]

    warehouse.execute("create view marts.broken as select error('the build broke') as user_id")
    with pytest.raises(duckdb.Error, match="the build broke"):
        publish(
            warehouse, _marts(warehouse, "history", "broken"), schema="marts", settings=settings,
            partitioned_by={"history": "as_of"},
        )  # fmt: skip
    assert _partitions_published(settings.database)["2026-01-02"] == second
    assert _files(folder) == after
    assert not [p for p in settings.database.parent.iterdir() if p.name.startswith(".")]


def test_a_new_pseudonym_key_copies_every_partition_again(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    _history(warehouse)
    first = _publish_history(warehouse, _settings(warehouse)).column("publication_id")[0]
    settings = _settings(warehouse, KEY)
    second = _publish_history(warehouse, settings).column("publication_id")[0].as_py()
    assert first.as_py() != second
    assert set(_partitions_published(settings.database).values()) == {second}
    ids = {user for (user,) in _read(settings.database, "select user_id from marts.history")}
    assert ids == {pseudonym(f"u{i}", key=KEY) for i in range(1, 6)}
    parquet = pq.read_table(settings.parquet_dir / "history").column("user_id").to_pylist()
    assert set(parquet) == ids
    # The same key again: nothing to copy.
    third = _publish_history(warehouse, settings).column("publication_id")[0].as_py()
    assert set(_partitions_published(settings.database).values()) == {second}
    assert third != second


def test_a_table_published_whole_before_moves_to_partitions(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    _history(warehouse)
    settings = _settings(warehouse)
    publish(warehouse, _marts(warehouse, "history"), schema="marts", settings=settings)
    assert (settings.parquet_dir / "history.parquet").is_file()
    _publish_history(warehouse, settings)
    assert not (settings.parquet_dir / "history.parquet").exists()
    assert len(_partitions_published(settings.database)) == 3
    publish(warehouse, _marts(warehouse, "history"), schema="marts", settings=settings)
    assert (settings.parquet_dir / "history.parquet").is_file()
    assert not (settings.parquet_dir / "history").exists()
    assert _read(settings.database, f"select count(*) from {PARTITIONS_TABLE}") == [(0,)]


def test_partitions_must_name_a_published_mart_and_a_column_without_nulls(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    settings = _settings(warehouse)
    with pytest.raises(ValueError, match=r"not published: \['history'\]"):
        publish(warehouse, _marts(warehouse, "scores"), schema="marts", settings=settings,
                partitioned_by={"history": "as_of"})  # fmt: skip
    with pytest.raises(ValueError, match=r"marts\.scores has no column 'day'"):
        publish(warehouse, _marts(warehouse, "scores"), schema="marts", settings=settings,
                partitioned_by={"scores": "day"})  # fmt: skip
    warehouse.execute("insert into marts.scores values ('u6', 60.0, null)")
    with pytest.raises(ValueError, match=r"marts\.scores .* 'as_of', which is null in 1 rows"):
        publish(warehouse, _marts(warehouse, "scores"), schema="marts", settings=settings,
                partitioned_by={"scores": "as_of"})  # fmt: skip
    assert not settings.database.exists()


def test_the_parquet_of_a_mart_no_longer_published_goes_but_only_from_its_own_folder(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    settings = _settings(warehouse)
    publish(warehouse, _marts(warehouse, "scores", "summary"), schema="marts", settings=settings)
    publish(warehouse, _marts(warehouse, "scores"), schema="marts", settings=settings)
    assert sorted(p.name for p in settings.parquet_dir.iterdir()) == ["scores.parquet"]

    # A copy of the published file elsewhere lists this folder's files: not for removal.
    elsewhere = PublishSettings(database=tmp_path / "elsewhere" / "bi.duckdb")
    elsewhere.database.parent.mkdir()
    shutil.copy(settings.database, elsewhere.database)
    publish(warehouse, _marts(warehouse, "summary"), schema="marts", settings=elsewhere)
    assert (settings.parquet_dir / "scores.parquet").is_file()
    assert sorted(p.name for p in elsewhere.parquet_dir.iterdir()) == ["summary.parquet"]


# A publisher in a process of its own, to be killed or raced: it publishes `rows` rows of
# a whole table and of a table by partition from a warehouse of its own.
PUBLISHER = """
import sys
from pathlib import Path

import duckdb

from purchasing_power.publish import PublishSettings, publish

warehouse, database, rows = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
with duckdb.connect(str(warehouse)) as connection:
    connection.execute(
        "create schema marts;"
        f"create table marts.history as select 'u' || i as user_id, hash(i) as h, i % 4 as day"
        f" from range({rows}) as t(i);"
        f"create table marts.scores as select 'u' || i as user_id, hash(i + 1) as h"
        f" from range({rows}) as t(i)"
    )
    marts = {name: connection.table(f"marts.{name}") for name in ("history", "scores")}
    settings = PublishSettings(database=database)
    publish(connection, marts, schema="marts", settings=settings, partitioned_by={"history": "day"})
"""
PUBLISHER_ROWS = 300_000


def _start_publisher(tmp_path: Path, database: Path) -> subprocess.Popen:
    (tmp_path / "publisher").mkdir()
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, str(tmp_path / "publisher" / "warehouse.duckdb"),
         str(database), str(PUBLISHER_ROWS)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _wait_for(found: Callable[[], list[Path]], publisher: subprocess.Popen) -> list[Path]:
    deadline = time.monotonic() + 60
    while not (paths := found()):
        assert publisher.poll() is None, f"the publisher ended first:\n{publisher.stdout.read()}"
        assert time.monotonic() < deadline, "the publisher staged nothing in 60 s"
        time.sleep(0.002)
    return paths


def _hidden(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob(".*")}


def test_a_publication_removes_what_killed_ones_left_and_only_that(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    settings = _settings(warehouse)
    folder, parquet = settings.database.parent, settings.parquet_dir
    publisher = _start_publisher(tmp_path, settings.database)
    # killed while it writes the whole table's Parquet: after the partitions' files
    _wait_for(lambda: list(parquet.glob(".scores.parquet.*.tmp")), publisher)
    publisher.send_signal(signal.SIGKILL)
    publisher.communicate()
    assert publisher.returncode == -signal.SIGKILL
    left = _hidden(folder)
    staged = r"[0-9a-f]{32}\.tmp"
    assert {re.sub(staged, "ID.tmp", name) for name in left} >= {
        ".purchasing_power_bi.duckdb.ID.tmp",
        ".purchasing_power_bi.duckdb.ID.tmp.wal",
        "purchasing_power_bi_parquet/.scores.parquet.ID.tmp",
        "purchasing_power_bi_parquet/history/.0.parquet.ID.tmp",
    }, left
    assert not settings.database.exists()
    # like names that no publication to this copy stages: kept
    unrelated = {
        f".other_bi.duckdb.{'a' * 32}.tmp",  # another copy's, in the same folder
        ".purchasing_power_bi.duckdb.notes.tmp",
        f"purchasing_power_bi_parquet/.scores.parquet.{'A' * 32}.tmp",
        f"purchasing_power_bi_parquet/history/.0.parquet.{'a' * 31}.tmp",
        f"purchasing_power_bi_parquet/.scores.{'a' * 32}.tmp",
    }
    for name in unrelated:
        (folder / name).write_text("not a leftover")

    publish(warehouse, _marts(warehouse, "scores"), schema="marts", settings=settings)

    assert _hidden(folder) == unrelated
    assert _read(settings.database, "select count(*) from marts.scores") == [(5,)]
    assert sorted(p.name for p in parquet.iterdir() if not p.name.startswith(".")) == [
        "history",  # the killed publication's folder: no publication listed it
        "scores.parquet",
    ]


def test_publications_to_one_copy_take_turns(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Another warehouse publishing to the same copy: this publication waits for it,
    rather than taking its staged files for leftovers, and then replaces its copy."""
    settings = _settings(warehouse)
    publisher = _start_publisher(tmp_path, settings.database)
    _wait_for(lambda: list(settings.database.parent.glob(".purchasing_power_bi.duckdb.*")),
              publisher)  # fmt: skip

    published = publish(warehouse, _marts(warehouse, "scores"), schema="marts", settings=settings)

    output, _ = publisher.communicate(timeout=60)
    assert publisher.returncode == 0, output
    ids = _read(settings.database, f"select distinct publication_id from {PUBLICATION_TABLE}")
    assert ids == [(published.column("publication_id")[0].as_py(),)]
    assert _read(settings.database, "select count(*) from marts.scores") == [(5,)]
    assert not _hidden(settings.database.parent)
