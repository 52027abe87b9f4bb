"""The incremental user-day base: a rerun after new raw files equals a full rebuild."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import duckdb
import pytest

from dbt_runner import make_project

pytestmark = pytest.mark.slow

BASE = "intermediate.int_events_aggregated_to_user_days"
SELECT = ("build", "--select", "+int_events_aggregated_to_user_days")


def _write_events(source: Path, target: Path, where: str) -> None:
    target.mkdir(parents=True)
    with duckdb.connect() as connection:
        connection.execute(
            f"copy (select * from '{source / 'events.parquet'}' where {where})"
            f" to '{target / 'events.parquet'}'"
        )


def _last_day(raw: Path) -> date:
    with duckdb.connect() as connection:
        return connection.execute(
            f"select max(event_time)::date from '{raw / 'events.parquet'}'"
        ).fetchone()[0]


def _rows(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(
            f"select * from {BASE} order by user_id, activity_date"
        ).fetchall()


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
    first = tmp_path / "first"
    # the first delivery lacks the last 10 days and, late, every event 2-4 days before them
    _write_events(
        small_raw,
        first,
        f"event_time < {cut} and not (event_time >= {cut} - interval 4 day"
        f" and event_time < {cut} - interval 2 day)",
    )
    incremental = make_project(tmp_path / "incremental")
    incremental.run(*SELECT, vars={"raw_path": str(first)})
    before = _rows(incremental.warehouse)
    incremental.run(*SELECT, vars={"raw_path": str(small_raw)})

    full = make_project(tmp_path / "full")
    full.run(*SELECT, vars={"raw_path": str(small_raw)})

    after, expected = _rows(incremental.warehouse), _rows(full.warehouse)
    assert len(after) > len(before)
    _assert_same(after, expected)


def test_events_older_than_the_lookback_fail_the_build_until_a_full_refresh(
    small_raw: Path, tmp_path: Path
) -> None:
    last_day = _last_day(small_raw)
    late = f"event_time >= timestamp '{last_day}' - interval 60 day"
    late += f" and event_time < timestamp '{last_day}' - interval 59 day"
    first = tmp_path / "first"
    _write_events(small_raw, first, f"not ({late})")
    project = make_project(tmp_path / "project")
    project.run(*SELECT, vars={"raw_path": str(first)})
    rerun = project.run(*SELECT, vars={"raw_path": str(small_raw)}, check=False)
    # the late day was missed, as documented, and the build says so
    assert rerun.returncode != 0
    assert "assert_user_days_hold_every_clean_event" in rerun.stdout
    stale = _rows(project.warehouse)
    project.run(*SELECT, "--full-refresh", vars={"raw_path": str(small_raw)})
    refreshed = _rows(project.warehouse)
    assert len(refreshed) > len(stale)
    full = make_project(tmp_path / "full")
    full.run(*SELECT, vars={"raw_path": str(small_raw)})
    _assert_same(refreshed, _rows(full.warehouse))


def test_an_old_day_redelivered_with_the_same_count_fails_the_build(
    small_raw: Path, tmp_path: Path
) -> None:
    old_day = f"event_time::date = date '{_last_day(small_raw)}' - interval 60 day"
    second = tmp_path / "second"
    second.mkdir()
    with duckdb.connect() as connection:
        # the same events, but that day's belong to other users: no day changes its count
        connection.execute(
            f"copy (select * replace (case when {old_day} then 'moved-' || user_id"
            f" else user_id end as user_id) from '{small_raw / 'events.parquet'}')"
            f" to '{second / 'events.parquet'}'"
        )
    project = make_project(tmp_path / "project")
    project.run(*SELECT, vars={"raw_path": str(small_raw)})
    rerun = project.run(*SELECT, vars={"raw_path": str(second)}, check=False)
    assert rerun.returncode != 0
    assert "assert_user_days_hold_every_clean_event" in rerun.stdout
    project.run(*SELECT, "--full-refresh", vars={"raw_path": str(second)})
