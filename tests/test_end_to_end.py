"""`dbt build` end to end into temporary warehouses: the output and input contracts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from dbt_runner import REPO, DbtProject, make_project

pytestmark = pytest.mark.slow

FIXTURE = REPO / "tests" / "fixtures" / "raw_minimal"


def _connect(project: DbtProject) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(project.warehouse), read_only=True)


def test_every_user_with_clean_history_is_scored_once(built: DbtProject) -> None:
    with _connect(built) as connection:
        expected = connection.execute(
            "select distinct user_id from intermediate.int_events_validated"
            " where is_clean and event_at < (select max(as_of_date)"
            " from intermediate.int_cutoffs_derived)"
        ).fetchall()
        scored = connection.execute("select user_id from marts.purchasing_power_scores").fetchall()
    assert sorted(scored) == sorted(expected)
    assert len(scored) > 500


def test_scores_follow_the_output_contract(built: DbtProject) -> None:
    with _connect(built) as connection:
        columns = [
            row[0]
            for row in connection.execute("describe marts.purchasing_power_scores").fetchall()
        ]
        stats = connection.execute(
            "select min(predicted_spend), min(purchase_probability), max(purchase_probability),"
            " min(power_index), max(power_index), count(distinct model_version),"
            " count(distinct as_of), any_value(horizon_days), count(*) filter (where tier is null)"
            " from marts.purchasing_power_scores"
        ).fetchone()
        tiers = {
            row[0]
            for row in connection.execute("select tier from reference.power_tiers").fetchall()
        }
        used = {
            row[0]
            for row in connection.execute(
                "select distinct tier from marts.purchasing_power_scores"
            ).fetchall()
        }
    assert columns == [
        "user_id", "as_of", "horizon_days", "model_version", "model_status", "predicted_spend",
        "purchase_probability", "power_index", "tier", "scored_at",
    ]  # fmt: skip
    low_spend, low_p, high_p, low_index, high_index, versions, dates, horizon, untiered = stats
    assert low_spend >= 0
    assert 0 <= low_p < high_p <= 1
    assert 0 <= low_index < high_index <= 100
    assert (versions, dates, horizon, untiered) == (1, 1, 60, 0)
    assert used <= tiers
    assert len(used) >= 3


def test_nothing_is_lost_between_raw_and_clean(built: DbtProject, small_raw: Path) -> None:
    ((raw_rows,),) = duckdb.execute(
        f"select count(*) from '{small_raw / 'events.parquet'}'"
    ).fetchall()  # fetchall: a result left open would block the shared default connection
    with _connect(built) as connection:
        rows_in, clean, rejected, dropped = connection.execute(
            "select * from marts.data_quality_summary"
        ).fetchone()
        reasons = dict(
            connection.execute(
                "select reject_reason, count(*) from marts.rejected_events group by 1"
            ).fetchall()
        )
    assert rows_in == raw_rows
    assert clean + rejected + dropped == raw_rows
    assert dropped > 0
    assert {
        "missing_event_id", "missing_user_id", "missing_event_time", "unknown_event_type",
        "conflicting_duplicate_event_id", "invalid_price", "invalid_quantity",
    } <= set(reasons)  # fmt: skip


def test_model_beats_the_baseline_and_is_registered(built: DbtProject) -> None:
    with _connect(built) as connection:
        metrics = dict(
            connection.execute(
                "select method || ':' || metric, metric_value from marts.model_evaluations"
                " where is_mean_over_folds"
            ).fetchall()
        )
        (version,) = connection.execute(
            "select model_version from ml.ml_models where is_active"
        ).fetchone()
    assert metrics["lightgbm:auc"] > 0.7
    assert metrics["lightgbm:auc"] > metrics["last_period_spend:auc"]
    assert metrics["lightgbm:normalized_gini"] > metrics["last_period_spend:normalized_gini"]
    card = json.loads((built.artifacts / version / "card.json").read_text())
    assert card["horizon_days"] == 60
    for graph in ("tree_ensemble", "tensor"):
        assert card["parity"][graph]["spend"]["max_rel_diff"] <= 1e-9
        assert card["parity"][graph]["purchase"]["max_abs_diff"] <= 1e-9
        assert card["parity"][graph]["tier_changes"] == 0
    assert {path.name for path in (built.artifacts / version).iterdir()} == {
        "card.json", "report.html",
        "purchase.onnx", "spend.onnx", "purchase.tensor.onnx", "spend.tensor.onnx",
        "purchase.lgb.txt", "spend_given_purchase.lgb.txt",
    }  # fmt: skip


def test_same_input_and_seed_give_the_same_scores(
    built: DbtProject, small_raw: Path, tmp_path: Path
) -> None:
    again = make_project(tmp_path)
    again.run("build", "--select", "+purchasing_power_scores",
              vars={"raw_path": str(small_raw), "horizon_days": 60})  # fmt: skip
    query = (
        "select user_id, model_version, predicted_spend, purchase_probability, power_index, tier"
        " from marts.purchasing_power_scores order by user_id"
    )
    with _connect(built) as first, _connect(again) as second:
        assert first.sql(query).fetchall() == second.sql(query).fetchall()


def _validated(project: DbtProject, raw_path: Path) -> dict[str, str | None]:
    project.run("build", "--select", "+int_events_validated", "data_quality_summary",
                vars={"raw_path": str(raw_path)})  # fmt: skip
    with _connect(project) as connection:
        return dict(
            connection.execute(
                "select coalesce(event_id, '<null>') || '/' || coalesce(user_id, '<null>'),"
                " reject_reason from intermediate.int_events_validated"
            ).fetchall()
        )


def test_each_bad_csv_row_gets_its_reason(tmp_path: Path) -> None:
    reasons = _validated(make_project(tmp_path), FIXTURE)
    assert reasons == {
        "e01/u1": None,
        "e02/u1": None,
        "e03/u1": None,  # and its exact duplicate, dropped
        "e04/u2": "conflicting_duplicate_event_id",  # two versions, one key
        "e05/<null>": "missing_user_id",
        "<null>/u3": "missing_event_id",
        "e07/u3": "unparseable_event_time",
        "e08/u3": "missing_event_time",
        "e09/u3": "unknown_event_type",
        "e10/u3": "invalid_price",
        "e11/u3": "invalid_amount",
        "e12/u3": "invalid_quantity",
        "e13/u3": "invalid_rating",
        "e14/u3": "unparseable_number",
        "e15/u1": None,
        "e16/u1": None,
        "e17/u3": None,
        "e18/u3": None,
        "e19/u3": None,
    }


def test_csv_times_with_offsets_become_utc_and_amounts_default(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    _validated(project, FIXTURE)
    with _connect(project) as connection:
        rows = dict(
            connection.execute(
                "select event_id, (event_at::varchar, amount, quantity)"
                " from intermediate.int_events_validated where event_id in ('e03', 'e17')"
            ).fetchall()
        )
    assert rows["e17"][0] == "2025-03-04 06:00:00"
    assert rows["e03"][1:] == (100.0, 2)


def test_events_at_or_after_as_of_are_quarantined(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.run("build", "--select", "+int_events_validated",
                vars={"raw_path": str(FIXTURE), "as_of": "2025-03-10"})  # fmt: skip
    with _connect(project) as connection:
        late = connection.execute(
            "select event_id from intermediate.int_events_validated"
            " where reject_reason = 'event_time_not_before_as_of' order by 1"
        ).fetchall()
    assert late == [("e15",), ("e16",)]


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = (FIXTURE / "events.csv").read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("event_type")
    kept = [",".join(v for i, v in enumerate(line.split(",")) if i != drop) for line in lines[:3]]
    (raw / "events.csv").write_text("\n".join(kept) + "\n")
    result = make_project(tmp_path / "dbt").run(
        "build", "--select", "stg_raw__events", vars={"raw_path": str(raw)}, check=False
    )
    assert result.returncode != 0
    assert f"{raw / 'events.csv'} has no column 'event_type'" in result.stdout


def test_a_folder_of_parquet_files_reads_like_one_file(small_raw: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "events").mkdir(parents=True)
    events = small_raw / "events.parquet"
    with duckdb.connect() as connection:
        for part in range(3):
            connection.execute(
                f"copy (select * from '{events}' where hash(event_id) % 3 = {part})"
                f" to '{raw / 'events' / f'part-{part}.parquet'}'"
            )
    shutil.copy(small_raw / "users.parquet", raw / "users.parquet")
    project = make_project(tmp_path / "dbt")
    project.run("build", "--select", "+data_quality_summary", vars={"raw_path": str(raw)})
    with _connect(project) as connection:
        rows_in = connection.execute("select rows_in from marts.data_quality_summary").fetchone()[0]
    assert [(rows_in,)] == duckdb.execute(f"select count(*) from '{events}'").fetchall()
