"""The incremental models (the validated events, the sessions, the user-day base, its running
totals, their windows at each cutoff and the feature families): a rerun after new raw files
equals a full rebuild, and what it cannot add fails the build."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from dbt_runner import DbtProject, copy_project, make_project
from test_add_feature import FEATURE, add_feature_column

pytestmark = pytest.mark.slow

BASE = "intermediate.int_events_aggregated_to_user_days"
ACCUMULATED = "intermediate.int_user_days_accumulated"
CATEGORY_DAYS = "intermediate.int_events_aggregated_to_user_category_days"
WINDOWED = "intermediate.int_user_activity_windowed"
CATEGORY_COUNTS = "intermediate.int_user_categories_counted_at_cutoffs"
FEATURES = "features.user_features"
PROFILE = "features.user_profile_features"
EXAMPLES = "ml.training_examples"
# the feature families, and user_features, which joins them
FAMILIES = (
    *(
        f"features.user_{family}_features"
        for family in ("purchase", "engagement", "price_level", "breadth", "review")
    ),
    PROFILE,
    FEATURES,
)
SELECT = ("build", "--select", "+" + EXAMPLES.split(".")[1])
VALIDATE = ("build", "--select", "+int_events_sessionized", "+" + CATEGORY_DAYS.split(".")[1])


def _deliver(source: Path, raw: Path, name: str, where: str, columns: str = "*") -> Path:
    """One delivery: the source events matching ``where`` (which may go on with ``order by``
    and ``limit``), as ``columns``, as raw/events/<name>.parquet."""
    target = raw / "events" / f"{name}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as connection:
        connection.execute(
            f"copy (select {columns} from '{source / 'events.parquet'}' where {where})"
            f" to '{target}'"
        )
    return target


def _last_day(raw: Path) -> date:
    with duckdb.connect() as connection:
        return connection.execute(
            f"select max(event_time)::date from '{raw / 'events.parquet'}'"
        ).fetchone()[0]


def _rows(warehouse: Path, table: str = BASE) -> list[tuple]:
    """A user-day table's rows but built_at (which run built a day is what differs from a
    full rebuild)."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(
            f"select * exclude (built_at) from {table} order by user_id, activity_date"
        ).fetchall()


def _windowed(warehouse: Path, where: str = "true") -> list[tuple]:
    """The windowed totals' rows matching ``where``, but built_at and cutoff_built_at (as
    above)."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(
            f"select * exclude (built_at, cutoff_built_at) from {WINDOWED} where {where}"
            " order by user_id, cutoff_date, window_days"
        ).fetchall()


def _features(warehouse: Path, table: str = FEATURES) -> list[tuple]:
    """Every feature of every user and cutoff (user_features joins each family's columns;
    the training examples add labels), but built_from (as above)."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(
            f"select * exclude (built_from) from {table} order by user_id, cutoff_date"
        ).fetchall()


def _plant_sentinels(warehouse: Path, tables: tuple[str, ...]) -> None:
    """A sentinel at every cutoff of each table: a copy of one of its rows, stamps and all,
    as the user 'sentinel <table>'. A rerun that rebuilds a cutoff drops its sentinel, one
    that leaves the cutoff keeps it (a model rebuilding a cutoff from a table that kept its
    sentinel copies that one, under the other table's name)."""
    with duckdb.connect(str(warehouse)) as connection:
        for table in tables:
            connection.execute(
                f"insert into {table} select * replace ('sentinel {table}' as user_id)"
                f" from {table}"
                " qualify row_number() over (partition by cutoff_date order by user_id) = 1"
            )


def _sentinel_cutoffs(warehouse: Path, table: str) -> set[date]:
    """The cutoffs of ``table`` that kept its sentinel; every sentinel row is then taken
    out of it."""
    with duckdb.connect(str(warehouse)) as connection:
        kept = connection.execute(
            f"select cutoff_date from {table} where user_id = 'sentinel {table}'"
        ).fetchall()
        connection.execute(f"delete from {table} where user_id like 'sentinel %'")
    return {row[0] for row in kept}


VALIDATED = "intermediate.int_events_validated"
VALIDATED_COLUMNS = ("source_file", "duplicate_rows_dropped", "reject_reason")
SOURCE, DROPPED, REASON = range(3)
SESSIONIZED = "intermediate.int_events_sessionized"


def _validated(warehouse: Path) -> list[tuple]:
    """Every row of the validated events, its file, dropped copies and reason first (not
    validated_at: which run validated a row is what differs from a full rebuild)."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(
            f"select {', '.join(VALIDATED_COLUMNS)},"
            f" * exclude ({', '.join(VALIDATED_COLUMNS)}, validated_at)"
            f" from {VALIDATED} order by all"
        ).fetchall()


def _sessionized(warehouse: Path) -> list[tuple]:
    """Every row of the sessions, user first (not validated_at and built_at, as above)."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(
            f"select user_id, * exclude (user_id, validated_at, built_at) from {SESSIONIZED}"
            " order by all"
        ).fetchall()


def _category_days(warehouse: Path) -> list[tuple]:
    """Every row of the user-category days (not validated_at and built_at, as above)."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(
            f"select * exclude (validated_at, built_at) from {CATEGORY_DAYS} order by all"
        ).fetchall()


def _assert_event_tables_equal(incremental: Path, full: Path) -> None:
    """The validated events, the sessions and the user-category days of two warehouses
    are equal row for row."""
    for table in (_validated, _sessionized, _category_days):
        assert table(incremental) == table(full), table.__name__


def _built_from_one_delivery(
    source: Path, tmp_path: Path, select: tuple[str, ...] = VALIDATE
) -> tuple[Path, DbtProject]:
    """Every source event delivered as raw/events/part-0.parquet, and a project that built
    ``select`` from it: the raw folder and the project."""
    raw = tmp_path / "raw"
    _deliver(source, raw, "part-0", "true")
    project = make_project(tmp_path / "project")
    project.run(*select, vars={"raw_path": str(raw)})
    return raw, project


def _assert_rerun_stops_without(
    project: DbtProject, table: str, column: str, select: tuple[str, ...], vars: dict
) -> None:
    """A table built before ``column`` existed (dropped here): the rerun of ``select`` fails
    and names the full refresh that rebuilds the table's model."""
    with duckdb.connect(str(project.warehouse)) as connection:
        connection.execute(f"alter table {table} drop column {column}")
    stale = project.run(*select, vars=vars, check=False)
    assert stale.returncode != 0
    model = table.split(".")[1]
    assert f"`dbt build --full-refresh --select {model}+`" in stale.stdout


def _assert_same(incremental: list[tuple], full: list[tuple]) -> None:
    # equal, up to the order DuckDB happens to add doubles in
    assert len(incremental) == len(full)
    for got, want in zip(incremental, full, strict=True):
        for got_value, want_value in zip(got, want, strict=True):
            if isinstance(want_value, float) and isinstance(got_value, float):
                assert math.isclose(got_value, want_value, rel_tol=1e-12, abs_tol=1e-9), (got, want)
            else:
                assert got_value == want_value, (got, want)


def test_rerun_with_new_and_late_events_equals_a_full_rebuild(
    small_raw: Path, tmp_path: Path
) -> None:
    last_day = _last_day(small_raw)
    cut = f"timestamp '{last_day}' - interval 10 day"
    raw = tmp_path / "raw"
    # the first delivery lacks the last 10 days and, late, every event 2-4 days before them
    first = (
        f"event_time < {cut} and not (event_time >= {cut} - interval 4 day"
        f" and event_time < {cut} - interval 2 day)"
    )
    _deliver(small_raw, raw, "part-0", first)
    # and two users with an event on the last day, which later copies with another price
    # turn into conflicting duplicates: one user is left with no clean event, the other
    # with an older one only
    source = small_raw / "events.parquet"
    last, old = (
        f"select * from '{source}' where event_id is not null and event_time >= {cut} - {days}"
        f" and event_time < {cut} - {days} + interval 1 day order by event_id limit 1"
        for days in ("interval 1 day", "interval 30 day")
    )
    vanishing = raw / "events" / "part-0-vanishing.parquet"
    with duckdb.connect() as connection:
        connection.execute(
            f"copy (select * replace ('vanishing-user' as user_id, 'vanishing' as event_id)"
            f" from ({last}) union all select * replace ('shrinking-user' as user_id,"
            f" 'shrinking' as event_id) from ({last}) union all select * replace"
            f" ('shrinking-user' as user_id, 'shrinking-old' as event_id) from ({old}))"
            f" to '{vanishing}'"
        )
    incremental = make_project(tmp_path / "incremental")
    incremental.run(*SELECT, vars={"raw_path": str(raw)})
    before = _rows(incremental.warehouse)
    assert "vanishing-user" in {row[0] for row in _rows(incremental.warehouse, ACCUMULATED)}
    _deliver(small_raw, raw, "part-1", f"not coalesce({first}, false)")
    with duckdb.connect() as connection:
        connection.execute(
            f"copy (select * replace (coalesce(price, 0) + 1 as price) from '{vanishing}'"
            f" where event_id <> 'shrinking-old') to '{vanishing.with_stem('part-1-vanishing')}'"
        )
    incremental.run(*SELECT, vars={"raw_path": str(raw)})
    # the rerun rebuilt the users with new events from their last session before them on:
    # their earlier sessions kept the first run's rows
    with duckdb.connect(str(incremental.warehouse), read_only=True) as connection:
        kept, rebuilt = connection.execute(
            f"select count(*) filter (where validated_at < last_run), count(*) filter"
            f" (where validated_at = last_run) from {SESSIONIZED}, (select max(validated_at)"
            f" as last_run from {VALIDATED}) where user_id in (select user_id from {VALIDATED}"
            f" where validated_at = last_run)"
        ).fetchone()
    assert kept > rebuilt > 0

    full = make_project(tmp_path / "full")
    full.run(*SELECT, vars={"raw_path": str(raw)})

    after, expected = _rows(incremental.warehouse), _rows(full.warehouse)
    assert len(after) > len(before)
    _assert_same(after, expected)
    accumulated = _rows(incremental.warehouse, ACCUMULATED)
    _assert_same(accumulated, _rows(full.warehouse, ACCUMULATED))
    assert "vanishing-user" not in {row[0] for row in accumulated}
    shrunk = [row[1] for row in accumulated if row[0] == "shrinking-user"]
    assert shrunk == [last_day - timedelta(days=40)]
    _assert_event_tables_equal(incremental.warehouse, full.warehouse)
    # the scoring cutoff moved: the old one's rows are gone, the new one's built
    _assert_same(_windowed(incremental.warehouse), _windowed(full.warehouse))
    for table in (FEATURES, EXAMPLES):
        _assert_same(_features(incremental.warehouse, table), _features(full.warehouse, table))


def test_late_events_rebuild_the_cutoffs_after_them_and_no_other(
    small_raw: Path, tmp_path: Path
) -> None:
    last_day = _last_day(small_raw)
    # half of a day's events, of users seen before it, arrive late: the day and its users
    # were built, and only the stamps tell
    day = f"date '{last_day}' - interval 2 day"
    late = (
        f"event_time::date = {day} and hash(event_id) % 2 = 0 and user_id in"
        f" (select user_id from '{small_raw / 'events.parquet'}' where event_time < {day})"
    )
    raw = tmp_path / "raw"
    _deliver(small_raw, raw, "part-0", f"not coalesce({late}, false)")
    # as_of pinned, so no cutoff moves: only the late day can change a window; the latest
    # training cutoff's horizon ends on as_of, so its labels read the late day
    scoring_cutoff = last_day + timedelta(days=1)
    horizon = timedelta(days=90)
    pinned = {
        "raw_path": str(raw),
        "as_of": str(scoring_cutoff),
        "horizon_days": horizon.days,
        "cutoff_anchor_date": str(scoring_cutoff - horizon),
    }
    project = make_project(tmp_path / "project")
    project.run(*SELECT, vars=pinned)
    scoring = f"cutoff_date = date '{scoring_cutoff}'"
    scoring_before = _windowed(project.warehouse, scoring)
    _plant_sentinels(project.warehouse, (WINDOWED, CATEGORY_COUNTS, *FAMILIES, EXAMPLES))
    _deliver(small_raw, raw, "part-1", late)
    project.run(*SELECT, vars=pinned)

    # the windows, the category counts and every family built from them rebuilt the
    # scoring cutoff (the only one after the late day) and kept the training cutoffs
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        training = {
            row[0]
            for row in connection.execute(
                "select cutoff_date from intermediate.int_cutoffs_derived where is_training_cutoff"
            ).fetchall()
        }
    assert len(training) >= 2
    for table in (WINDOWED, CATEGORY_COUNTS, *FAMILIES):
        # no user is new, so the profile (built from each cutoff's users) rebuilt nothing
        expected = training | {scoring_cutoff} if table == PROFILE else training
        assert _sentinel_cutoffs(project.warehouse, table) == expected, table
    # the training examples rebuilt the one training cutoff whose labels read the late day
    assert _sentinel_cutoffs(project.warehouse, EXAMPLES) == training - {scoring_cutoff - horizon}
    full = make_project(tmp_path / "full")
    full.run(*SELECT, vars=pinned)
    _assert_same(_windowed(project.warehouse), _windowed(full.warehouse))
    assert _windowed(project.warehouse, scoring) != scoring_before
    for table in (FEATURES, EXAMPLES):
        _assert_same(_features(project.warehouse, table), _features(full.warehouse, table))

    # a table built before cutoff_built_at: the rerun stops and says how to rebuild it
    _assert_rerun_stops_without(project, WINDOWED, "cutoff_built_at", SELECT, pinned)


def test_an_edited_family_rebuilds_every_cutoff_and_adds_its_column(
    small_raw: Path, tmp_path: Path
) -> None:
    """What an analyst does on a built warehouse: a new feature column in a family
    (test_add_feature's), then `dbt build`: no --full-refresh."""
    raw, project = _built_from_one_delivery(small_raw, tmp_path, SELECT)
    root = copy_project(tmp_path / "edited")
    add_feature_column(root)
    edited = replace(project, root=root)
    edited.run(*SELECT, vars={"raw_path": str(raw)})
    full = make_project(tmp_path / "full", root=root)
    full.run(*SELECT, vars={"raw_path": str(raw)})
    features = _features(edited.warehouse)
    _assert_same(features, _features(full.warehouse))
    with duckdb.connect(str(edited.warehouse), read_only=True) as connection:
        counted = connection.execute(
            f"select count(distinct cutoff_date) filter (where {FEATURE} is not null),"
            f" count(distinct cutoff_date) from {FEATURES}"
        ).fetchone()
    assert counted[0] == counted[1] > 2


def test_events_older_than_the_lookback_fail_the_build_until_a_full_refresh(
    small_raw: Path, tmp_path: Path
) -> None:
    last_day = _last_day(small_raw)
    late = f"event_time >= timestamp '{last_day}' - interval 60 day"
    late += f" and event_time < timestamp '{last_day}' - interval 59 day"
    raw = tmp_path / "raw"
    _deliver(small_raw, raw, "part-0", f"not coalesce({late}, false)")
    project = make_project(tmp_path / "project")
    project.run(*SELECT, vars={"raw_path": str(raw)})
    _deliver(small_raw, raw, "part-1", late)
    rerun = project.run(*SELECT, vars={"raw_path": str(raw)}, check=False)
    # the late day was missed, as documented, and the build says so
    assert rerun.returncode != 0
    assert "assert_user_days_hold_every_clean_event" in rerun.stdout
    stale = _rows(project.warehouse)
    project.run(*SELECT, "--full-refresh", vars={"raw_path": str(raw)})
    refreshed = _rows(project.warehouse)
    assert len(refreshed) > len(stale)
    full = make_project(tmp_path / "full")
    full.run(*SELECT, vars={"raw_path": str(raw)})
    _assert_same(refreshed, _rows(full.warehouse))
