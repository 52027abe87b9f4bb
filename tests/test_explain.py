"""Explanations: importance per head and exact per-user reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import model_examples
from model_examples import HURDLE_SETTINGS, SCHEMA, examples
from purchasing_power import btyd_features
from purchasing_power.explain import (
    HeadShap,
    feature_importance,
    load_explainer,
    log_spend_contributions,
    reason_batches,
    top_reasons,
)
from purchasing_power.registration import register_models
from purchasing_power.tiers import Tier
from purchasing_power.train import LIGHTGBM_HYBRID, LIGHTGBM_TWEEDIE


@pytest.fixture(scope="module")
def trained():
    return model_examples.trained()


def test_contributions_add_up_to_log_predicted_spend(trained) -> None:
    features = SCHEMA.to_matrix(examples(rows_per_cutoff=100, seed=8))
    contributions, base = log_spend_contributions(HeadShap.of(trained.heads), features)
    _, spend = trained.heads.predict(features)
    assert contributions.shape == features.shape
    np.testing.assert_allclose(base + contributions.sum(axis=1), np.log(spend), atol=1e-9)
    # the noise feature explains little next to past spend and visits
    size = np.abs(contributions).mean(axis=0)
    assert size[SCHEMA.names.index("noise")] < size[SCHEMA.names.index("spend_before")]


@pytest.mark.parametrize("candidate", [LIGHTGBM_TWEEDIE, LIGHTGBM_HYBRID])
def test_contributions_add_up_for_the_single_tweedie_and_the_hybrid(candidate: str) -> None:
    result = model_examples.trained(candidate=candidate)
    scoring = examples(rows_per_cutoff=100, seed=8)
    schema = result.schema
    if schema.has_derived:
        schema = schema.with_btyd(btyd_features.fit(scoring, window_days=30))
    features = schema.to_matrix(scoring)
    contributions, base = log_spend_contributions(HeadShap.of(result.heads), features)
    _, spend = result.heads.predict(features)
    assert contributions.shape == features.shape
    np.testing.assert_allclose(base + contributions.sum(axis=1), np.log(spend), atol=1e-9)
    rows = feature_importance(result.heads, schema=schema)
    assert {row.head for row in rows} == set(result.heads.head_names)
    assert {row.feature_name for row in rows} == set(schema.names)


def test_top_reasons_rank_by_size_and_keep_the_sign() -> None:
    contributions = np.array([[0.1, -0.5, 0.3, 0.0], [0.2, 0.2, -0.2, 0.05]])
    assert top_reasons(contributions, top=3).tolist() == [[1, 2, 0], [0, 1, 2]]


def test_importance_lists_every_feature_of_both_heads(trained) -> None:
    rows = feature_importance(trained.heads, schema=SCHEMA)
    assert {(row.head, row.feature_name) for row in rows} == {
        (head, name) for head in ("purchase", "spend_given_purchase") for name in SCHEMA.names
    }
    gain = {(row.head, row.feature_name): row.gain for row in rows}
    assert gain[("purchase", "visits")] > 3 * gain[("purchase", "noise")]


def test_reasons_of_a_registered_model_stream_three_rows_per_user(trained, tmp_path: Path) -> None:
    scoring = examples(rows_per_cutoff=50, seed=4)
    registered = register_models(
        trained,
        schema=SCHEMA,
        settings=HURDLE_SETTINGS,
        as_of="2025-04-01",
        scoring_features=SCHEMA.to_matrix(scoring),
        tiers=(Tier("all", 0.0, 100.0),),
        artifacts_dir=tmp_path,
    )
    explainer = load_explainer(registered.path)
    table = pa.Table.from_batches(
        list(reason_batches(scoring.to_batches(max_chunksize=32), explainer=explainer))
    )
    assert table.num_rows == 3 * scoring.num_rows
    first = table.slice(0, 3).to_pylist()
    assert [row["reason_rank"] for row in first] == [1, 2, 3]
    assert {row["user_id"] for row in first} == {scoring.column("user_id")[0].as_py()}
    assert {row["model_version"] for row in first} == {registered.model_version}
    descriptions = {f.name: f.description for f in SCHEMA.features}
    for row in first:
        assert row["feature_description"] == descriptions[row["feature_name"]]
        assert row["spend_multiplier"] == pytest.approx(np.exp(row["contribution"]))
    sizes = [abs(row["contribution"]) for row in first]
    assert sizes == sorted(sizes, reverse=True)
    # a missing feature value is reported as null, not NaN
    missing = table.filter(pa.compute.equal(table.column("feature_name"), "visits"))
    values = missing.column("feature_value").to_pylist()
    assert all(value is None or not np.isnan(value) for value in values)
