"""The raw deliveries of the incremental build: a raw file is known by its bytes (touched,
copied or moved, it is the same file; changed or removed, the build fails naming it),
duplicates across files and deliveries of copies or rejected rows only, and a changed
event-type seed. Split from test_incremental.py so the two run on separate test workers."""

from __future__ import annotations

import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

import duckdb

from dbt_runner import DbtProject, copy_project, make_project
from test_incremental import (
    ACCUMULATED,
    BASE,
    CATEGORY_DAYS,
    DROPPED,
    REASON,
    SELECT,
    SESSIONIZED,
    SOURCE,
    VALIDATE,
    VALIDATED,
    _assert_event_tables_equal,
    _assert_rerun_stops_without,
    _assert_same,
    _built_from_one_delivery,
    _category_days,
    _deliver,
    _last_day,
    _rows,
    _sessionized,
    _validated,
    _windowed,
)


def _validated_from_two_deliveries(
    source: Path, tmp_path: Path
) -> tuple[Path, Path, Path, DbtProject]:
    """The source events as two files, part-1 one old day and part-0 the rest, and a
    project that validated them: the raw folder, both files and the project."""
    raw = tmp_path / "raw"
    old_day = f"event_time::date = date '{_last_day(source)}' - interval 60 day"
    first = _deliver(source, raw, "part-0", f"not coalesce({old_day}, false)")
    second = _deliver(source, raw, "part-1", old_day)
    project = make_project(tmp_path / "project")
    project.run(*VALIDATE, vars={"raw_path": str(raw)})
    return raw, first, second, project


def test_a_raw_file_changed_or_removed_fails_the_build_naming_it(
    small_raw: Path, tmp_path: Path
) -> None:
    raw, first, second, project = _validated_from_two_deliveries(small_raw, tmp_path)
    built = _validated(project.warehouse)

    # an old day redelivered: that day's events now belong to other users
    with duckdb.connect() as connection:
        connection.execute(
            f"copy (select * replace ('moved-' || user_id as user_id) from '{second}')"
            f" to '{second}'"
        )
    first.unlink()
    rerun = project.run(*VALIDATE, vars={"raw_path": str(raw)}, check=False)
    assert rerun.returncode != 0
    assert f"{first} (removed)" in rerun.stdout
    assert f"{second} (changed)" in rerun.stdout
    assert "--full-refresh" in rerun.stdout
    assert _validated(project.warehouse) == built  # nothing changed

    project.run(*VALIDATE, "--full-refresh", vars={"raw_path": str(raw)})
    full = make_project(tmp_path / "full")
    full.run(*VALIDATE, vars={"raw_path": str(raw)})
    _assert_event_tables_equal(project.warehouse, full.warehouse)


def test_a_raw_file_touched_copied_or_moved_is_the_same_file(
    small_raw: Path, tmp_path: Path
) -> None:
    """A file is known by its bytes: a touch, a copy without its times and a moved raw_path
    validate nothing again; the rows take the files' new paths and times, as a full build
    from the new folder has them. A copy under a new name is a new delivery of copies."""
    raw, first, second, project = _validated_from_two_deliveries(small_raw, tmp_path)

    def runs() -> list[tuple]:
        with duckdb.connect(str(project.warehouse), read_only=True) as connection:
            return connection.execute(
                f"select validated_at, count(*) from {VALIDATED} group by all order by all"
            ).fetchall()

    validated_runs = runs()
    later = time.time() + 120
    os.utime(first, (later, later))  # touched
    shutil.copyfile(second, second.with_suffix(".tmp"))  # copied back without its times
    second.with_suffix(".tmp").replace(second)
    moved = tmp_path / "moved" / "raw"
    moved.parent.mkdir()
    raw.rename(moved)
    project.run(*VALIDATE, vars={"raw_path": str(moved)})
    assert runs() == validated_runs  # no row validated again
    full = make_project(tmp_path / "full")
    full.run(*VALIDATE, vars={"raw_path": str(moved)})
    _assert_event_tables_equal(project.warehouse, full.warehouse)

    # the same bytes under a new name: a redelivery, its rows collapsed into the first copies
    shutil.copyfile(moved / "events" / "part-1.parquet", moved / "events" / "part-2.parquet")
    project.run(*VALIDATE, vars={"raw_path": str(moved)})
    assert len(runs()) == len(validated_runs) + 1
    refreshed = make_project(tmp_path / "full-2")
    refreshed.run(*VALIDATE, vars={"raw_path": str(moved)})
    _assert_event_tables_equal(project.warehouse, refreshed.warehouse)


def test_duplicates_across_files_and_a_moved_as_of_equal_a_full_rebuild(
    small_raw: Path, tmp_path: Path
) -> None:
    last_day = _last_day(small_raw)
    raw, project = _built_from_one_delivery(small_raw, tmp_path, SELECT)
    sessionized_before = _sessionized(project.warehouse)
    days_before = {row[2] for row in _category_days(project.warehouse)}
    # later files repeat old events: exact copies, other versions, and rows without an id
    source = small_raw / "events.parquet"
    ids = f"select event_id from '{source}' where event_id is not null order by event_id"
    _deliver(small_raw, raw, "part-1", f"event_id in ({ids} limit 20)")
    part_2 = raw / "events" / "part-2.parquet"
    with duckdb.connect() as connection:
        connection.execute(
            f"copy (select * replace (coalesce(price, 0) + 1 as price) from '{source}'"
            f" where event_id in ({ids} desc limit 20) union all select * replace"
            f" (null as event_id) from '{source}' where event_id in ({ids} desc limit 5))"
            f" to '{part_2}'"
        )
    # and the scoring date moves back, so the last 30 days become too late
    moved = {"raw_path": str(raw), "as_of": str(last_day - timedelta(days=30))}
    project.run(*SELECT, vars=moved)
    full = make_project(tmp_path / "full")
    full.run(*SELECT, vars=moved)

    _assert_event_tables_equal(project.warehouse, full.warehouse)
    # the days from the new as_of on are gone from the user-day base and its running
    # totals, and the windows are those of the new cutoffs
    for table in (BASE, ACCUMULATED):
        _assert_same(_rows(project.warehouse, table), _rows(full.warehouse, table))
    _assert_same(_windowed(project.warehouse), _windowed(full.warehouse))
    validated = _validated(full.warehouse)
    reasons = {row[REASON] for row in validated}
    assert {"conflicting_duplicate_event_id", "event_time_not_before_as_of"} <= reasons
    assert sum(row[DROPPED] for row in validated if row[SOURCE].endswith("part-0.parquet")) > 0
    # users whose every event is now too late are gone, not left with stale sessions, and
    # so are the days now after as_of
    sessionized = _sessionized(project.warehouse)
    assert {row[0] for row in sessionized_before} - {row[0] for row in sessionized}
    assert days_before - {row[2] for row in _category_days(project.warehouse)}

    # as_of unset again (the data's end): the events quarantined as too late are clean,
    # in the event tables and the user-day base, as a full rebuild has them (the models
    # after those take the new rows as they took the moved as_of's, above)
    unset_select = (*VALIDATE, "+" + BASE.split(".")[1])
    project.run(*unset_select, vars={"raw_path": str(raw)})
    unset = make_project(tmp_path / "full-unset")
    unset.run(*unset_select, vars={"raw_path": str(raw)})
    _assert_event_tables_equal(project.warehouse, unset.warehouse)
    _assert_same(_rows(project.warehouse, BASE), _rows(unset.warehouse, BASE))
    assert "event_time_not_before_as_of" not in {
        row[REASON] for row in _validated(project.warehouse)
    }
    assert {row[0] for row in _sessionized(project.warehouse)} == {
        row[0] for row in sessionized_before
    }


def test_a_changed_event_type_seed_revalidates_the_events_it_maps(
    small_raw: Path, tmp_path: Path
) -> None:
    root = copy_project(tmp_path / "repo")
    raw = tmp_path / "raw"
    _deliver(small_raw, raw, "part-0", "true")
    # and purchases without an event_id (rejected whatever their type), of a type the seed
    # does not know yet: no key can replace these rows
    _deliver(
        small_raw, raw, "part-1", "event_type = 'purchase' order by event_id limit 20",
        columns="* replace (null as event_id, 'gift_card' as event_type)",
    )  # fmt: skip
    project = make_project(tmp_path / "project", root=root)
    project.run(*VALIDATE, vars={"raw_path": str(raw)})
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        types = connection.execute(
            f"select distinct raw_event_type from {VALIDATED}"
            " where reject_reason = 'unknown_event_type' order by 1"
        ).fetchall()
    assert types

    # every type the shop sent that the seed did not know becomes a view, gift cards
    # purchases
    seed = root / "seeds" / "event_types.csv"
    seed.write_text(
        seed.read_text() + "".join(f"{name},view\n" for (name,) in types) + "gift_card,purchase\n"
    )
    project.run(*VALIDATE, vars={"raw_path": str(raw)})
    full = make_project(tmp_path / "full", root=root)
    full.run(*VALIDATE, vars={"raw_path": str(raw)})

    _assert_event_tables_equal(project.warehouse, full.warehouse)
    assert not [row for row in _validated(project.warehouse) if row[REASON] == "unknown_event_type"]
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        gift_cards = connection.execute(
            f"select event_type, reject_reason, count(*), count(amount) from {VALIDATED}"
            " where raw_event_type = 'gift_card' group by all"
        ).fetchall()
    assert gift_cards == [("purchase", "missing_event_id", 20, 20)]


def test_a_delivery_of_rejected_rows_only_is_seen_and_not_rebuilt_again(
    small_raw: Path, tmp_path: Path
) -> None:
    raw, project = _built_from_one_delivery(small_raw, tmp_path)
    # a broken delivery: events of known users and days, every one of an unknown type
    _deliver(
        small_raw, raw, "part-1", "event_id is not null order by event_id limit 50",
        columns="* replace ('junk-' || event_id as event_id, 'bogus' as event_type)",
    )  # fmt: skip
    project.run(*VALIDATE, vars={"raw_path": str(raw)})
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        latest, reasons = connection.execute(
            f"select max(validated_at), list(distinct reject_reason) from {VALIDATED}"
            " where event_id like 'junk-%'"
        ).fetchone()
        # the next rerun rebuilds what no row has seen: this run is seen by both models
        for table in (SESSIONIZED, CATEGORY_DAYS):
            (seen,) = connection.execute(
                f"select count(*) from {table} where validated_at = $latest", {"latest": latest}
            ).fetchone()
            assert seen > 0, table
    assert reasons == ["unknown_event_type"]
    # a table sessionized before is_session_inferred: the rerun stops and says how to rebuild it
    _assert_rerun_stops_without(
        project, SESSIONIZED, "is_session_inferred", VALIDATE, {"raw_path": str(raw)}
    )


def test_a_delivery_of_copies_only_is_seen_and_not_validated_again(
    small_raw: Path, tmp_path: Path
) -> None:
    raw, project = _built_from_one_delivery(small_raw, tmp_path)
    # a redelivery: every row an exact copy of one already validated, so none of its rows
    # is kept under its name
    redelivery = _deliver(
        small_raw, raw, "part-1", "event_id is not null order by event_id limit 100"
    )
    project.run(*VALIDATE, vars={"raw_path": str(raw)})
    full = make_project(tmp_path / "full")
    full.run(*VALIDATE, vars={"raw_path": str(raw)})
    _assert_event_tables_equal(project.warehouse, full.warehouse)

    def latest_runs() -> list[tuple]:
        with duckdb.connect(str(project.warehouse), read_only=True) as connection:
            return connection.execute(
                f"select max(validated_at), count(*) from {VALIDATED}"
                " where duplicate_rows_dropped > 0 and event_id in"
                f" (select event_id from '{redelivery}')"
            ).fetchall()

    redelivered = latest_runs()
    assert redelivered[0][1] == 100
    # the next rerun has nothing new to validate, so it rebuilds nothing downstream
    project.run(*VALIDATE, vars={"raw_path": str(raw)})
    assert latest_runs() == redelivered

    # a table validated before other_source_files: the rerun stops and says how to rebuild it
    _assert_rerun_stops_without(
        project, VALIDATED, "other_source_files", VALIDATE, {"raw_path": str(raw)}
    )
