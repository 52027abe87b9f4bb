"""`dbt build` end to end for the models: evaluation against baselines in the warehouse,
explanations, the retrain policy as the dbt log tells it, and the report command."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from dbt_runner import DbtProject
from purchasing_power.cli import app

pytestmark = pytest.mark.slow

BASELINES = {"last_period_spend", "rfm", "rfm_decay", "bg_nbd_gamma_gamma", "lightgbm_rfm"}
CANDIDATES = {"lightgbm_hurdle", "lightgbm_tweedie", "lightgbm_hybrid"}
METHODS = {"lightgbm", *CANDIDATES, *BASELINES}


def _connect(project: DbtProject) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(project.warehouse), read_only=True)


@pytest.fixture
def copy_of_built(built: DbtProject, tmp_path: Path) -> DbtProject:
    """The built warehouse and registry, copied so that a test may build on them."""
    project = DbtProject(
        root=built.root,
        warehouse=tmp_path / "warehouse.duckdb",
        artifacts=tmp_path / "artifacts",
        work=tmp_path,
    )
    shutil.copy(built.warehouse, project.warehouse)
    shutil.copytree(built.artifacts, project.artifacts)
    return project


def test_model_and_baselines_are_measured_side_by_side(built: DbtProject) -> None:
    with _connect(built) as connection:
        (version, status, method) = connection.execute(
            "select model_version, model_status, scoring_method from ml.ml_models where is_active"
        ).fetchone()
        rows = connection.execute(
            "select validation_cutoff_date, method, metric, metric_value, is_scoring_method"
            " from marts.model_evaluations where model_version = $1",
            [version],
        ).fetchall()
        deciles = connection.execute(
            "select method, count(*), sum(user_count) from marts.model_decile_calibration"
            " where model_version = $1 group by method",
            [version],
        ).fetchall()
        validation_rows = connection.execute(
            "select count(*) from ml.training_examples where is_validation_cutoff"
        ).fetchone()[0]
    card = json.loads((built.artifacts / version / "card.json").read_text())
    folds = [fold["validation_cutoff"] for fold in card["folds"]]
    # the small shop's six cutoffs 30 days apart hold three folds at 60 days
    assert len(folds) == 3
    means = {(m, k): v for cutoff, m, k, v, _ in rows if cutoff is None}
    assert {method for method, _ in means} == METHODS
    for cutoff in folds:
        on_fold = {(m, k) for c, m, k, _, _ in rows if str(c) == cutoff}
        assert on_fold == set(means)
    for baseline in BASELINES:
        for metric in ("auc", "normalized_gini"):
            assert means[("lightgbm", metric)] > means[(baseline, metric)], (baseline, metric)
    assert status == "accepted"
    assert method in CANDIDATES
    assert {m for _, m, _, _, scoring in rows if scoring} == {method}
    assert {method: (groups, rows) for method, groups, rows in deciles} == {
        method: (10, validation_rows) for method in {"lightgbm", *BASELINES}
    }
    assert card["status"] == "accepted"
    for graph in ("tree_ensemble", "tensor"):
        assert card["parity"][graph]["tier_changes"] == 0
        assert card["parity"][graph]["spend"]["max_rel_diff"] <= 1e-9
        assert card["parity"][graph]["purchase"]["edge_cases"]["max_abs_diff"] <= 1e-9
    assert (built.artifacts / version / "spend.tensor.onnx").is_file()
    assert version in (built.artifacts / version / "report.html").read_text()


def test_no_fold_of_the_build_trains_on_labels_that_reach_its_validation_cutoff(
    built: DbtProject,
) -> None:
    """The folds the build chose on, read back from the card against the label window
    int_cutoffs_derived placed the cutoffs for."""
    with _connect(built) as connection:
        (version,) = connection.execute(
            "select model_version from ml.ml_models where is_active"
        ).fetchone()
        (label_days,) = connection.execute(
            "select label_horizon_days from intermediate.int_cutoffs_derived"
            " where is_scoring_cutoff"
        ).fetchone()
    card = json.loads((built.artifacts / version / "card.json").read_text())
    for fold in card["folds"]:
        validation = dt.date.fromisoformat(fold["validation_cutoff"])
        for cutoff in fold["training_cutoffs"]:
            assert dt.date.fromisoformat(cutoff) + dt.timedelta(days=label_days) <= validation


def test_the_build_fails_where_a_scored_user_lost_its_reasons(copy_of_built: DbtProject) -> None:
    """Issue 40, point 4: reasons are kept for every scored user; the dbt test
    assert_every_scored_user_has_its_reasons names a user whose reasons are missing,
    short or from another model."""
    test = ("test", "--select", "assert_every_scored_user_has_its_reasons")
    copy_of_built.run(*test)
    with duckdb.connect(str(copy_of_built.warehouse)) as connection:
        (user,) = connection.execute(
            "select min(user_id) from marts.purchasing_power_reasons"
        ).fetchone()
        connection.execute("delete from marts.purchasing_power_reasons where user_id = ?", [user])
        connection.execute(
            "delete from marts.purchasing_power_reasons where reason_rank = 3 and user_id = ("
            " select max(user_id) from marts.purchasing_power_reasons)"
        )
    failed = copy_of_built.run(*test, check=False)
    assert failed.returncode != 0
    assert "Got 2 results, configured to fail if != 0" in failed.stdout


def test_every_scored_user_has_three_reasons_from_the_active_model(built: DbtProject) -> None:
    with _connect(built) as connection:
        per_user = connection.execute(
            "select count(*), count(distinct scores.user_id), min(reasons.n), max(reasons.n)"
            " from marts.purchasing_power_scores as scores"
            " inner join (select user_id, count(*) as n, any_value(model_version) as version"
            "  from marts.purchasing_power_reasons group by user_id) as reasons"
            " on scores.user_id = reasons.user_id and scores.model_version = reasons.version"
        ).fetchone()
        scored = connection.execute("select count(*) from marts.purchasing_power_scores").fetchone()
        described = connection.execute(
            "select count(*) from marts.purchasing_power_reasons as reasons"
            " inner join ml.feature_registry as registry"
            " on reasons.feature_name = registry.feature_name"
            " and reasons.feature_description = registry.feature_description"
        ).fetchone()[0]
        importance = connection.execute(
            "select head, count(*), round(sum(gain_share), 9) from marts.feature_importance"
            " group by head order by head"
        ).fetchall()
        features = connection.execute("select count(*) from ml.feature_registry").fetchone()[0]
    assert per_user == (scored[0], scored[0], 3, 3)
    assert described == 3 * scored[0]
    # both heads of the active model: the purchase head and its spend head (conditional
    # on a purchase in a hurdle), every feature (the hybrid's BTYD ones too)
    assert [head for head, _, _ in importance] in (
        ["purchase", "spend_given_purchase"],
        ["purchase", "spend"],
    )
    for _, count, share in importance:
        assert count in (features, features + 4)
        assert share == 1.0


def test_a_rebuild_scores_with_the_accepted_model_unless_told_to_retrain(
    copy_of_built: DbtProject, small_raw: Path
) -> None:
    project = copy_of_built
    with _connect(project) as connection:
        (version,) = connection.execute(
            "select model_version from ml.ml_models where is_active"
        ).fetchone()
    variables = {"raw_path": str(small_raw), "horizon_days": 60}

    reused = project.run("build", "--select", "ml_models+", vars=variables)
    assert f"scoring with the latest accepted model {version}" in reused.stdout
    assert "training a new model" not in reused.stdout
    assert (
        "purchasing_power: scoring with the latest accepted model"
        in (project.work / "logs" / "dbt.log").read_text()
    )

    retrained = project.run(
        "build", "--select", "ml_models",
        vars={**variables, "retrain": True, "training_threads": 1, "max_boost_rounds": 25},
    )  # fmt: skip
    assert "training a new model (retrain: true)" in retrained.stdout
    with _connect(project) as connection:
        (artifact,) = connection.execute(
            "select artifact_path from ml.ml_models where is_active"
        ).fetchone()
    card = json.loads((Path(artifact) / "card.json").read_text())
    assert card["method"] in CANDIDATES  # the retrained model, accepted, scores
    assert {head: params["num_threads"] for head, params in card["params"].items()} == {
        "purchase": 1,
        "spend_given_purchase": 1,
    }
    assert card["max_boost_rounds"] == 25
    assert all(0 < rounds <= 25 for rounds in card["best_iterations"].values())

    pinned = project.run(
        "build", "--select", "ml_models", vars={**variables, "model_version": "pp-nope"},
        check=False,
    )  # fmt: skip
    assert pinned.returncode != 0
    assert "model_version 'pp-nope' is not registered" in pinned.stdout

    with _connect(project) as connection:
        active = connection.execute(
            "select count(*) filter (where is_active), count(*) from ml.ml_models"
        ).fetchone()
    assert active[0] == 1


def test_report_command_writes_the_active_models_page(
    copy_of_built: DbtProject, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["report", "--db", str(copy_of_built.warehouse), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    with _connect(copy_of_built) as connection:
        (version,) = connection.execute(
            "select model_version from ml.ml_models where is_active"
        ).fetchone()
    page = out.read_text()
    assert version in page
    # gain, lift, the scores by tier, importance of each head, and a decile calibration per
    # method (the model and the five baselines: rfm_decay and lightgbm_rfm joined for
    # issue 34)
    assert page.count("<svg ") == 11
    missing = CliRunner().invoke(
        app,
        ["report", "--db", str(copy_of_built.warehouse), "--model-version", "pp-nope"],
    )
    assert missing.exit_code == 1
    assert "no model pp-nope" in missing.output


def test_train_command_registers_a_model_from_the_warehouse(
    copy_of_built: DbtProject, tmp_path: Path
) -> None:
    artifacts = tmp_path / "cli_artifacts"
    result = CliRunner().invoke(
        app, ["train", "--db", str(copy_of_built.warehouse), "--artifacts", str(artifacts)]
    )
    assert result.exit_code == 0, result.output
    (card_path,) = artifacts.glob("*/card.json")
    card = json.loads(card_path.read_text())
    assert card["horizon_days"] == 60
    assert f"registered {card['model_version']}" in result.output
    with _connect(copy_of_built) as connection:
        rows = connection.execute(
            "select count(*) from ml.training_examples where is_validation_cutoff"
        ).fetchone()[0]
    assert card["validation_rows"] == rows
