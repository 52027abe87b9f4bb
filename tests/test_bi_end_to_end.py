"""`dbt build` end to end for BI users: the marts, their history, the published copy."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from dbt_runner import REPO, DbtProject, make_project
from purchasing_power.publish import FORBIDDEN_COLUMNS, pseudonym

pytestmark = pytest.mark.slow

KEY = "bi-end-to-end-key"
BI_MARTS = (
    "purchasing_power_scores",
    "purchasing_power_score_history",
    "purchasing_power_score_changes",
    "purchasing_power_reasons",
    "purchasing_power_tier_summary",
    "model_performance",
    "model_evaluations",
    "data_quality_daily",
    "data_quality_summary",
    "monitoring_performance",
    "monitoring_performance_deciles",
    "monitoring_drift",
    "monitoring_data_volume",
    "monitoring_alerts",
    "customer_segments",
    "user_price_bands",
    "user_item_price_fit",
    "category_demand_forecast",
    "category_demand_accuracy",
)


def _vars(raw: Path, **extra: object) -> dict:
    return {"raw_path": str(raw), "horizon_days": 60, **extra}


def _bi_file(project: DbtProject) -> Path:
    return project.warehouse.with_name("purchasing_power_bi.duckdb")


def _rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


@dataclass(frozen=True)
class Published:
    """What a BI reader found in the published file at one moment."""

    publication_id: str
    is_consistent: bool


def _read_published(path: Path) -> Published:
    with duckdb.connect(str(path), read_only=True) as connection:
        listed = connection.execute(
            "select table_name, row_count, publication_id from bi_publication"
        ).fetchall()
        counted = {
            table: connection.execute(f"select count(*) from {table}").fetchall()[0][0]
            for table, _, _ in listed
        }
        ((scored, summarised),) = connection.execute(
            "select (select count(*) from marts.purchasing_power_scores),"
            " (select sum(user_count) from marts.purchasing_power_tier_summary"
            " where segment_type = 'all')"
        ).fetchall()
    ids = {publication_id for _, _, publication_id in listed}
    complete = {table for table, _, _ in listed} == {f"marts.{name}" for name in BI_MARTS}
    counts_match = all(counted[table] == rows for table, rows, _ in listed)
    return Published(
        publication_id=min(ids),
        is_consistent=len(ids) == 1 and complete and counts_match and scored == summarised,
    )


def test_bi_marts_are_documented_in_the_warehouse_and_published(built: DbtProject) -> None:
    with duckdb.connect(str(built.warehouse), read_only=True) as connection:
        comments = dict(
            connection.execute(
                "select table_name, comment from duckdb_tables()"
                " where schema_name in ('marts', 'monitoring')"
            ).fetchall()
        )
        scores = connection.execute(
            "select * from marts.purchasing_power_scores order by user_id"
        ).fetchall()
        history = connection.execute(
            "select count(*), count(distinct user_id), min(execution_provider),"
            " min(scoring_graph) from marts.purchasing_power_score_history"
        ).fetchall()
        daily = connection.execute(
            "select outcome, sum(row_count) from marts.data_quality_daily group by outcome"
        ).fetchall()
        summary = connection.execute(
            "select rows_clean, rows_rejected, rows_duplicate_dropped"
            " from marts.data_quality_summary"
        ).fetchall()
        shares = connection.execute(
            "select segment_type, segment, sum(user_share), sum(user_count)"
            " from marts.purchasing_power_tier_summary group by all"
        ).fetchall()
    for name in BI_MARTS:
        assert comments[name].startswith("One row per"), name
    assert history == [(len(scores), len(scores), "CPUExecutionProvider", "tree_ensemble")]
    by_outcome = dict(daily)
    assert summary == [
        (by_outcome["clean"], by_outcome["rejected"], by_outcome["duplicate_dropped"])
    ]
    assert {segment_type for segment_type, *_ in shares} == {
        "all",
        "region",
        "channel",
        "customer_segment",
    }
    for segment_type, _, share, users in shares:
        assert share == pytest.approx(1.0)
        assert users <= len(scores)
        assert users == len(scores) or segment_type != "all"

    published = _bi_file(built)
    assert _rows(published, "select * from marts.purchasing_power_scores order by user_id") == (
        scores
    )
    tables = _rows(published, "select schema_name || '.' || table_name from duckdb_tables()")
    assert {table for (table,) in tables} == {f"marts.{n}" for n in BI_MARTS} | {
        "main.bi_publication",
        "main.bi_publication_partitions",
    }
    columns = {
        name.lower() for (name,) in _rows(published, "select column_name from duckdb_columns()")
    }
    assert not columns & FORBIDDEN_COLUMNS
    assert _rows(
        published,
        "select comment from duckdb_tables() where table_name = 'purchasing_power_tier_summary'",
    )[0][0].startswith("One row per segment and power tier")
    parquet = pq.read_table(
        published.with_name("purchasing_power_bi_parquet") / "purchasing_power_scores.parquet"
    )
    assert parquet.num_rows == len(scores)


def test_dbt_docs_generate_works(built: DbtProject, small_raw: Path) -> None:
    built.run("docs", "generate", vars=_vars(small_raw))
    catalog = json.loads((built.work / "target" / "catalog.json").read_text())
    node = catalog["nodes"]["model.purchasing_power.purchasing_power_tier_summary"]
    assert node["metadata"]["comment"].startswith("One row per segment and power tier")
    assert node["columns"]["user_share"]["comment"].startswith("user_count over the segment")
    manifest = json.loads((built.work / "target" / "manifest.json").read_text())
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert (
        "model.purchasing_power.purchasing_power_score_changes"
        in (exposures["customer_drift_alerts"]["depends_on"]["nodes"])
    )


@dataclass(frozen=True)
class Rebuild:
    project: DbtProject
    before: Published
    during: list[Published]
    after: Published
    moved: dict[str, str]  # user -> how the fixture moved their previous score


def _copy_project(built: DbtProject, base: Path) -> DbtProject:
    project = make_project(base)
    shutil.copy(built.warehouse, project.warehouse)
    shutil.copy(_bi_file(built), _bi_file(project))
    shutil.copytree(
        built.work / "purchasing_power_bi_parquet", base / "purchasing_power_bi_parquet"
    )
    shutil.copytree(built.artifacts, project.artifacts)
    return project


def _add_earlier_scores(project: DbtProject) -> dict[str, str]:
    """Put an as_of 28 days earlier into the history: everybody's score as it is now, but
    four users' moved, so that the next build sees exactly what changed for whom."""
    with duckdb.connect(str(project.warehouse)) as connection:
        users = [
            user
            for (user,) in connection.execute(
                "select user_id from marts.purchasing_power_score_history"
                " where power_index between 25 and 75 order by user_id limit 4"
            ).fetchall()
        ]
        moved = dict(zip(users, ("up", "down", "small", "tier"), strict=True))
        connection.execute(
            """
            insert into marts.purchasing_power_score_history by name
            select * replace (
                as_of - 28 as as_of,
                scored_at - interval 28 day as scored_at,
                case user_id when $up then power_index - 15 when $down then power_index + 12
                    when $small then power_index + 5 else power_index end as power_index,
                case user_id when $tier then 'premium' else tier end as tier
            )
            from marts.purchasing_power_score_history
            """,
            {"up": users[0], "down": users[1], "small": users[2], "tier": users[3]},
        )
    return moved


@pytest.fixture(scope="module")
def rebuilt(
    built: DbtProject, small_raw: Path, tmp_path_factory: pytest.TempPathFactory
) -> Rebuild:
    """A second build of the same shop and as_of, from scoring on (the model stays, and
    so do the marts scoring does not feed), with the pseudonym key set, while a BI reader
    opens the published file again and again."""
    project = _copy_project(built, tmp_path_factory.mktemp("rebuild"))
    moved = _add_earlier_scores(project)
    before = _read_published(_bi_file(project))
    results = []
    os.environ["PURCHASING_POWER_PSEUDONYM_KEY"] = KEY
    try:
        build = threading.Thread(
            target=lambda: results.append(
                project.run("build", "--select", "ml_scores+", vars=_vars(small_raw), check=False)
            )
        )
        build.start()
        during = []
        while build.is_alive():
            during.append(_read_published(_bi_file(project)))
            time.sleep(0.2)
        build.join()
    finally:
        del os.environ["PURCHASING_POWER_PSEUDONYM_KEY"]
    (result,) = results
    assert result.returncode == 0, result.stdout
    return Rebuild(project, before, during, _read_published(_bi_file(project)), moved)


def test_bi_readers_see_a_whole_copy_while_a_build_runs(rebuilt: Rebuild) -> None:
    assert rebuilt.before.is_consistent
    assert len(rebuilt.during) > 10
    assert all(read.is_consistent for read in rebuilt.during)
    assert rebuilt.during[0].publication_id == rebuilt.before.publication_id
    seen = {read.publication_id for read in rebuilt.during}
    assert seen <= {rebuilt.before.publication_id, rebuilt.after.publication_id}
    assert rebuilt.after.is_consistent
    assert rebuilt.after.publication_id != rebuilt.before.publication_id


def test_rerunning_an_as_of_does_not_duplicate_the_history(rebuilt: Rebuild) -> None:
    counts = _rows(
        rebuilt.project.warehouse,
        "select as_of, count(*), count(distinct user_id) from marts.purchasing_power_score_history"
        " group by as_of order by as_of",
    )
    ((scored,),) = _rows(
        rebuilt.project.warehouse, "select count(*) from marts.purchasing_power_scores"
    )
    assert [(users, distinct) for _, users, distinct in counts] == [(scored, scored)] * 2


def test_changes_list_moves_beyond_the_threshold_and_tier_changes(rebuilt: Rebuild) -> None:
    changes = _rows(
        rebuilt.project.warehouse,
        "select user_id, direction, round(power_index_change, 6), is_tier_changed,"
        " is_model_changed, as_of - previous_as_of from marts.purchasing_power_score_changes",
    )
    by_move = {rebuilt.moved[user]: tuple(row) for user, *row in changes}
    assert by_move == {
        "up": ("up", 15.0, False, False, 28),
        "down": ("down", -12.0, False, False, 28),
        "tier": ("down", 0.0, True, False, 28),
    }


def test_segments_measure_the_fall_from_the_previous_as_of(rebuilt: Rebuild) -> None:
    segments = _rows(
        rebuilt.project.warehouse,
        "select user_id, has_previous_score, as_of - previous_as_of, round(power_index_change, 6),"
        " segment, lifetime_spend_percentile, purchase_probability_change"
        " from marts.customer_segments",
    )
    assert {(has, days) for _, has, days, *_ in segments} == {(True, 28)}
    by_user = {user: row for user, *row in segments}
    assert by_user[next(u for u, m in rebuilt.moved.items() if m == "down")][2] == -12.0
    assert by_user[next(u for u, m in rebuilt.moved.items() if m == "up")][2] == 15.0
    # the default at_risk rule: top quarter of lifetime spend and 10 index points down
    for user, _, _, change, segment, lifetime_percentile, probability_change in segments:
        falling = lifetime_percentile >= 75 and (change <= -10 or probability_change <= -0.15)
        assert (segment == "at_risk") == falling, user


def test_the_published_copy_carries_pseudonyms_when_a_key_is_set(rebuilt: Rebuild) -> None:
    warehouse_ids = _rows(
        rebuilt.project.warehouse, "select user_id from marts.purchasing_power_score_changes"
    )
    published_ids = _rows(
        _bi_file(rebuilt.project), "select user_id from marts.purchasing_power_score_changes"
    )
    assert sorted(pseudonym(user, key=KEY.encode()) for (user,) in warehouse_ids) == sorted(
        user for (user,) in published_ids
    )
    assert _rows(
        _bi_file(rebuilt.project),
        "select count(*) from marts.purchasing_power_scores as scores"
        " inner join marts.purchasing_power_score_history using (user_id, as_of, model_version)",
    ) == _rows(rebuilt.project.warehouse, "select count(*) from marts.purchasing_power_scores")
    per_as_of = _rows(
        rebuilt.project.warehouse,
        "select cast(as_of as varchar), count(*) from marts.purchasing_power_score_history"
        " group by all order by all",
    )
    assert len(per_as_of) == 2
    assert (
        _rows(
            _bi_file(rebuilt.project),
            "select partition_value, row_count from bi_publication_partitions order by all",
        )
        == per_as_of
    )
    folder = _bi_file(rebuilt.project).with_name("purchasing_power_bi_parquet")
    history = pq.read_table(folder / "purchasing_power_score_history")
    assert history.num_rows == sum(rows for _, rows in per_as_of)
    assert set(history.column("user_id").to_pylist()) == {
        pseudonym(user, key=KEY.encode())
        for (user,) in _rows(
            rebuilt.project.warehouse, "select user_id from marts.purchasing_power_score_history"
        )
    }


def test_scores_do_not_depend_on_the_scoring_batch_size(rebuilt: Rebuild, small_raw: Path) -> None:
    query = (
        "select user_id, predicted_spend, purchase_probability, power_index, tier"
        " from marts.purchasing_power_scores order by user_id"
    )
    before = _rows(rebuilt.project.warehouse, query)
    rebuilt.project.run(
        "run", "--select", "ml_scores", "purchasing_power_scores",
        vars=_vars(small_raw, scoring_batch_rows=7, scoring_device="cpu"),
    )  # fmt: skip
    assert _rows(rebuilt.project.warehouse, query) == before


def test_a_failed_build_leaves_the_published_copy_in_place(
    rebuilt: Rebuild, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = (REPO / "tests" / "fixtures" / "raw_minimal" / "events.csv").read_text().splitlines()
    drop = lines[0].split(",").index("event_type")
    kept = [",".join(v for i, v in enumerate(line.split(",")) if i != drop) for line in lines]
    (raw / "events.csv").write_text("\n".join(kept) + "\n")
    parquet = _bi_file(rebuilt.project).with_name("purchasing_power_bi_parquet")
    files_before = {path: path.read_bytes() for path in parquet.rglob("*") if path.is_file()}
    before = _read_published(_bi_file(rebuilt.project))

    result = rebuilt.project.run("build", vars=_vars(raw), check=False)

    assert result.returncode != 0
    assert "has no column 'event_type'" in result.stdout
    assert _read_published(_bi_file(rebuilt.project)) == before
    assert {p: p.read_bytes() for p in parquet.rglob("*") if p.is_file()} == files_before


def test_a_full_refresh_keeps_the_score_history_unless_reset_on_purpose(
    built: DbtProject, small_raw: Path, tmp_path: Path
) -> None:
    """No raw file can rebuild past scores: `--full-refresh` rebuilds everything else and
    keeps every as_of of the history, in the warehouse and in the published copy;
    `reset_score_history` empties it on purpose."""
    project = _copy_project(built, tmp_path)
    _add_earlier_scores(project)
    history = "select as_of, count(*) from marts.purchasing_power_score_history group by all"
    before = sorted(_rows(project.warehouse, history))
    assert len(before) == 2

    project.run("build", "--full-refresh", "--select", "ml_scores+", vars=_vars(small_raw))
    assert sorted(_rows(project.warehouse, history)) == before
    published = project.work / "purchasing_power_bi_parquet" / "purchasing_power_score_history"
    assert len(list(published.glob("*.parquet"))) == 2
    assert sorted(_rows(_bi_file(project), history)) == before

    project.run(
        "build", "--full-refresh", "--select", "purchasing_power_score_history",
        vars=_vars(small_raw, reset_score_history=True),
    )  # fmt: skip
    assert sorted(_rows(project.warehouse, history)) == before[1:]


def test_every_history_table_is_kept_by_a_full_refresh(built: DbtProject) -> None:
    """An incremental table after the layers built from raw files (marts, monitoring)
    keeps what no raw file can rebuild: each one, now or added later, sets full_refresh
    false."""
    rebuilt_from_raw_files = ("staging", "intermediate", "features", "ml")
    manifest = json.loads((built.work / "target" / "manifest.json").read_text())
    history = {
        node["name"]: node["config"].get("full_refresh")
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["config"]["materialized"] == "incremental"
        and Path(node["original_file_path"]).parts[1] not in rebuilt_from_raw_files
    }
    assert "purchasing_power_score_history" in history
    assert all(setting is False for setting in history.values()), history
