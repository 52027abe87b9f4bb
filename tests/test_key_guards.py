"""The key guard of the big incremental models (meta guarded_key, macros/guard_unique_key.sql):
a model about to write a repeated key fails and leaves its table as it was, on a rerun's
batch, a first build and a --full-refresh alike; and their key tests, narrowed to the latest
run's rows (macros/rows_of_latest_guarded_write.sql), still fail on what they should.

One tiny shop, built once into a copy of the project whose model SQL a test may break."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from dbt_runner import DbtProject, copy_project, make_project
from test_incremental import CATEGORY_DAYS, SESSIONIZED, VALIDATED, _deliver

pytestmark = pytest.mark.slow

# every guarded model, its table's mark and the column its latest write is known by
GUARDED = {
    VALIDATED: ("guarded_key: event_id where is_clean", "validated_at"),
    SESSIONIZED: ("guarded_key: event_id", "built_at"),
    CATEGORY_DAYS: ("guarded_key: user_id, category, activity_date", "built_at"),
    "intermediate.int_events_aggregated_to_user_days": (
        "guarded_key: user_id, activity_date",
        "built_at",
    ),
    "intermediate.int_user_activity_windowed": (
        "guarded_key: user_id, cutoff_date, window_days",
        "cutoff_built_at",
    ),
}
EVENTS = (
    "build",
    "--select",
    "+int_events_sessionized",
    "+int_events_aggregated_to_user_category_days",
)
SESSION_KEY_TEST = "test.purchasing_power.unique_int_events_sessionized_event_id."
KEY_TESTS_ONLY = ("--exclude-resource-type", "unit_test")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny shop (200 users, 120 days): its events, and a raw folder holding all but
    the last 10 days of them as events/part-0.parquet."""
    from purchasing_power.generate import GeneratorSettings, generate

    source = tmp_path_factory.mktemp("source")
    generate(source, settings=GeneratorSettings(users=200, days=120, seed=11, dirty_fraction=0.01))
    raw = tmp_path_factory.mktemp("raw")
    _deliver(source, raw, "part-0", f"event_time < {_ten_days_before_the_end(source)}")
    return source, raw


@pytest.fixture(scope="module")
def guarded(shop: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    """A copy of the project that built every guarded model, with its tests, from the shop."""
    _, raw = shop
    root = copy_project(tmp_path_factory.mktemp("project"))
    project = make_project(tmp_path_factory.mktemp("guarded"), root=root)
    project.run(*EVENTS, "+int_user_activity_windowed", vars={"raw_path": str(raw)})
    return project


def _ten_days_before_the_end(source: Path) -> str:
    return f"(select max(event_time) - interval 10 day from '{source / 'events.parquet'}')"


def _rows(project: DbtProject, table: str) -> list[tuple]:
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        return connection.execute(f"select * from {table} order by all").fetchall()


def _mark(project: DbtProject, table: str) -> str | None:
    schema, name = table.split(".")
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        found = connection.execute(
            "select comment from duckdb_tables() where schema_name = $schema"
            " and table_name = $name",
            {"schema": schema, "name": name},
        ).fetchall()
    return found[0][0] if found else None


def _key_test_sql(project: DbtProject) -> str:
    """The SQL the sessions' key test ran last."""
    results = json.loads((project.work / "target" / "run_results.json").read_text())
    (result,) = (row for row in results["results"] if row["unique_id"].startswith(SESSION_KEY_TEST))
    assert result["status"] == "pass"
    return str(result["compiled_code"])


@contextmanager
def _model_writing_a_key_twice(project: DbtProject, model: str, last_cte: str) -> Iterator[None]:
    """The model's SQL, for the time being, writes its first row twice."""
    path = project.root / "models" / "intermediate" / f"{model}.sql"
    sql = path.read_text()
    last = f"select * from {last_cte}\n"
    assert sql.endswith(last)
    path.write_text(
        sql.removesuffix(last)
        + f"select * from {last_cte}\nunion all\n(select * from {last_cte} order by all limit 1)\n"
    )
    try:
        yield
    finally:
        path.write_text(sql)


def test_a_full_build_marks_every_guarded_table_and_tests_all_its_rows(
    guarded: DbtProject,
) -> None:
    for table, (mark, _) in GUARDED.items():
        assert _mark(guarded, table) == mark, table
    # a full build wrote every row: its key test read them all
    with duckdb.connect(str(guarded.warehouse), read_only=True) as connection:
        # as the macro writes it: DuckDB's text of the timestamp (no trailing zeros)
        ((stamp,),) = connection.execute(
            f"select distinct cast(built_at as varchar) from {SESSIONIZED}"
        ).fetchall()
    assert f"(built_at = timestamp '{stamp}')" in _key_test_sql(guarded)


def test_a_repeated_key_in_a_rerun_fails_the_model_and_leaves_its_table(
    guarded: DbtProject, shop: tuple[Path, Path]
) -> None:
    source, raw = shop
    _deliver(source, raw, "part-1", f"event_time >= {_ten_days_before_the_end(source)}")
    before = _rows(guarded, SESSIONIZED)
    with _model_writing_a_key_twice(guarded, "int_events_sessionized", "sessions_listed"):
        # the model's unit tests would stop it before its batch: the guard is what is tested
        broken = guarded.run(*EVENTS, *KEY_TESTS_ONLY, vars={"raw_path": str(raw)}, check=False)
    assert broken.returncode != 0
    assert (
        "int_events_sessionized: 1 key(s) (event_id) occur more than once in the rows it was"
        " about to write (2 rows at most, e.g. {'event_id':"
    ) in broken.stdout
    assert _rows(guarded, SESSIONIZED) == before

    # fixed, the rerun writes the new events, and the key test reads those alone
    guarded.run(*EVENTS, vars={"raw_path": str(raw)})
    with duckdb.connect(str(guarded.warehouse), read_only=True) as connection:
        latest, written, rows = connection.execute(
            "select cast(max(built_at) as varchar), count(*) filter (where built_at ="
            f" (select max(built_at) from {SESSIONIZED})), count(*) from {SESSIONIZED}"
        ).fetchone()
    assert 0 < written < rows
    assert rows > len(before)
    assert f"(built_at = timestamp '{latest}')" in _key_test_sql(guarded)


def test_a_repeated_key_fails_a_full_refresh_and_a_first_build(
    guarded: DbtProject, shop: tuple[Path, Path]
) -> None:
    _, raw = shop
    model = CATEGORY_DAYS.split(".")[1]
    before = _rows(guarded, CATEGORY_DAYS)
    message = (
        f"{model}: 1 key(s) (user_id, category, activity_date) occur more than once in the"
        " rows it was about to write"
    )
    with _model_writing_a_key_twice(guarded, model, "days_stamped"):
        refresh = guarded.run(
            "run", "--full-refresh", "--select", model, vars={"raw_path": str(raw)}, check=False
        )
        assert refresh.returncode != 0
        assert message in refresh.stdout
        # the previous table, rows and mark, is still there
        assert _rows(guarded, CATEGORY_DAYS) == before
        assert _mark(guarded, CATEGORY_DAYS) == GUARDED[CATEGORY_DAYS][0]

        with duckdb.connect(str(guarded.warehouse)) as connection:
            connection.execute(f"drop table {CATEGORY_DAYS}")
        first = guarded.run("run", "--select", model, vars={"raw_path": str(raw)}, check=False)
        assert first.returncode != 0
        assert message in first.stdout
        assert _mark(guarded, CATEGORY_DAYS) is None  # no table: the create rolled back
    guarded.run("build", "--select", model, vars={"raw_path": str(raw)})
    assert len(_rows(guarded, CATEGORY_DAYS)) == len(before)


def test_the_narrowed_key_tests_fail_on_what_they_should(
    guarded: DbtProject, shop: tuple[Path, Path]
) -> None:
    _, raw = shop
    test = ("test", "--select", "int_events_sessionized", *KEY_TESTS_ONLY)
    with duckdb.connect(str(guarded.warehouse)) as connection:
        # a copy of a row of the latest write, which no guard saw (a hand edit, a hook)
        connection.execute(
            f"insert into {SESSIONIZED} select * from {SESSIONIZED}"
            f" where built_at = (select max(built_at) from {SESSIONIZED}) order by all limit 1"
        )
    assert guarded.run(*test, vars={"raw_path": str(raw)}, check=False).returncode != 0

    # the copy dated to an earlier write: the latest write's rows hold no repeated key...
    with duckdb.connect(str(guarded.warehouse)) as connection:
        connection.execute(
            f"update {SESSIONIZED} set built_at = built_at - interval 1 day where rowid ="
            f" (select max(rowid) from {SESSIONIZED})"
        )
    guarded.run(*test, vars={"raw_path": str(raw)})
    # ... but the whole table does: the audit var, or a table without the guard's mark
    # (built before it, or changed outside a guarded write), has the test read every row
    whole = guarded.run(
        *test, vars={"raw_path": str(raw), "key_tests_read_whole_tables": True}, check=False
    )
    assert whole.returncode != 0
    with duckdb.connect(str(guarded.warehouse)) as connection:
        connection.execute(f"comment on table {SESSIONIZED} is null")
    unmarked = guarded.run(*test, vars={"raw_path": str(raw)}, check=False)
    assert unmarked.returncode != 0
    assert "int_events_sessionized was not built whole under its key guard" in unmarked.stdout

    # a full refresh checks and marks the table again
    guarded.run(
        "run", "--full-refresh", "--select", "int_events_sessionized", vars={"raw_path": str(raw)}
    )
    assert _mark(guarded, SESSIONIZED) == GUARDED[SESSIONIZED][0]


def test_a_narrowed_key_test_on_a_model_without_the_guard_fails(
    guarded: DbtProject, shop: tuple[Path, Path]
) -> None:
    _, raw = shop
    path = guarded.root / "models" / "intermediate" / "_intermediate__models.yml"
    yaml = path.read_text()
    unguarded = "            columns: [user_id, activity_date]\n\n  - name: int_cutoffs_derived"
    assert unguarded in yaml
    path.write_text(
        yaml.replace(
            unguarded,
            "            columns: [user_id, activity_date]\n          config:\n"
            "            where: __latest_guarded_write__\n\n  - name: int_cutoffs_derived",
        )
    )
    try:
        failed = guarded.run(
            "test", "--select", "int_user_days_accumulated", *KEY_TESTS_ONLY,
            vars={"raw_path": str(raw)}, check=False,
        )  # fmt: skip
    finally:
        path.write_text(yaml)
    assert failed.returncode != 0
    assert "int_user_days_accumulated has no meta guarded_key with written_at" in failed.stdout
