"""Too little history for the horizon: the build stops with a clear message, and no
training cutoff ever has labels reaching past as_of."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from dbt_runner import make_project
from purchasing_power.generate import GeneratorSettings, generate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def short_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("short_raw")
    generate(out, settings=GeneratorSettings(users=400, days=140, seed=11, dirty_fraction=0.0))
    return out


def _latest_cutoff_on_the_grid(raw: Path, horizon_days: int) -> dict[str, str]:
    """The vars that put a grid day at as_of - horizon_days (as_of: the day after the last
    event), so the latest training cutoff is there rather than up to a spacing before."""
    with duckdb.connect() as connection:
        (last_day,) = connection.execute(
            f"select max(event_time)::date from '{raw / 'events.parquet'}'"
        ).fetchone()
    anchor = last_day + timedelta(days=1 - horizon_days)
    return {"raw_path": str(raw), "cutoff_anchor_date": anchor.isoformat()}


def test_one_complete_cutoff_scores_every_user_with_btyd_and_says_why(
    short_raw: Path, tmp_path: Path
) -> None:
    project = make_project(tmp_path)
    # 140 days, a 90-day horizon and 28 days of history leave room for one 90-day cutoff
    # only, and for two with 60-day labels, which min_label_horizon_days 61 forbids:
    # nothing to train on, so BTYD fitted on all history scores, and the log says why
    result = project.run(
        "build",
        "--select",
        "+purchasing_power_scores",
        vars={**_latest_cutoff_on_the_grid(short_raw, 90), "min_label_horizon_days": 61},
    )
    assert "training needs at least 2 cutoffs with complete 90-day labels" in result.stdout
    assert "SCORED WITH BG_NBD_GAMMA_GAMMA, NOT A TRAINED MODEL" in result.stdout
    assert "use more history, a shorter horizon_days" in result.stdout
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        cutoffs = connection.execute(
            "select cutoff_date, as_of_date, horizon_days from intermediate.int_cutoffs_derived"
            " where is_training_cutoff"
        ).fetchall()
        (users,) = connection.execute(
            "select count(distinct user_id) from features.user_features where is_scoring_cutoff"
        ).fetchone()
        scores = connection.execute(
            "select count(*), count(distinct model_version), min(model_status),"
            " min(horizon_days), count(*) filter (where predicted_spend > 0),"
            " max(purchase_probability) from marts.purchasing_power_scores"
        ).fetchone()
        active = connection.execute(
            "select model_status, scoring_method from ml.ml_models where is_active"
        ).fetchall()
    assert len(cutoffs) == 1
    for cutoff_date, as_of_date, horizon_days in cutoffs:
        assert (as_of_date - cutoff_date).days >= horizon_days
    rows, versions, status, horizon, positive, top_probability = scores
    assert (rows, versions, status, horizon) == (users, 1, "fallback", 90)
    assert 0 < positive < rows  # buyers get a positive spend, never-buyers 0
    assert 0 < top_probability <= 1
    assert active == [("fallback", "bg_nbd_gamma_gamma")]


def test_a_shorter_label_window_is_learnt_and_extended_to_the_horizon(
    short_raw: Path, tmp_path: Path
) -> None:
    project = make_project(tmp_path)
    # the same history: no 90-day fold fits (two cutoffs 90 days apart with complete
    # labels); 30-day labels leave three cutoffs 30 days apart and two folds, the most
    result = project.run(
        "build",
        "--select",
        "+purchasing_power_scores",
        vars=_latest_cutoff_on_the_grid(short_raw, 90),
    )
    assert "the model learns 30-day labels, and its scores are extended to 90 days" in (
        result.stdout
    )
    assert "choosing on 2 rolling-origin fold(s)" in result.stdout
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        cutoffs = connection.execute(
            "select cutoff_date, as_of_date, label_horizon_days"
            " from intermediate.int_cutoffs_derived where is_training_cutoff"
        ).fetchall()
        (users,) = connection.execute(
            "select count(distinct user_id) from features.user_features where is_scoring_cutoff"
        ).fetchone()
        (rows, horizon) = connection.execute(
            "select count(*), min(horizon_days) from marts.purchasing_power_scores"
        ).fetchone()
        models = connection.execute(
            "select scoring_method, artifact_path, model_status from ml.ml_models where is_active"
        ).fetchall()
    assert len(cutoffs) == 3
    for cutoff_date, as_of_date, label_horizon_days in cutoffs:
        assert label_horizon_days == 30
        assert (as_of_date - cutoff_date).days >= label_horizon_days
    assert (rows, horizon) == (users, 90)
    # the winner of the folds scores: a candidate (accepted or unproven) or a baseline,
    # extended to the horizon (BTYD, fitted on all history, predicts the horizon itself)
    ((method, path, status),) = models
    card = json.loads((Path(path) / "card.json").read_text())
    assert len(card["folds"]) == 2
    if method == "bg_nbd_gamma_gamma":
        assert status == "baseline"
        return
    assert method.endswith("_extended")
    assert status in ("accepted", "unproven", "baseline")
    assert card["extension"]["label_horizon_days"] == 30
    assert card["extension"]["spend_factor"] > 1.0
    assert card["extension"]["probability_exponent"] > 1.0


def test_a_shorter_horizon_fits_the_same_history(short_raw: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.run(
        "build",
        "--select",
        "+int_cutoffs_derived",
        vars={**_latest_cutoff_on_the_grid(short_raw, 30), "horizon_days": 30},
    )
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        (training_cutoffs,) = connection.execute(
            "select count(*) from intermediate.int_cutoffs_derived where is_training_cutoff"
        ).fetchone()
    assert training_cutoffs >= 3
