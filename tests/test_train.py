"""Training, registration and scoring on a small examples table built in code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from purchasing_power.export import ParityReport
from purchasing_power.features import FeatureSchema, FeatureSpec
from purchasing_power.registry import ParityError, _gate, list_models, register_models
from purchasing_power.scoring import load_scoring_model, score_batches
from purchasing_power.train import TrainingSettings, train_models

SETTINGS = TrainingSettings(horizon_days=30, max_boost_rounds=60, min_data_in_leaf=20)
SCHEMA = FeatureSchema(
    (
        FeatureSpec("spend_before", "Spend before"),
        FeatureSpec("visits", "Visits"),
        FeatureSpec("noise", "Noise"),
    )
)


def _examples(rows_per_cutoff: int = 1500, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    cutoffs = ["2025-01-01", "2025-02-01", "2025-03-01"]
    n = rows_per_cutoff * len(cutoffs)
    power = rng.lognormal(3, 1, n)
    visits = rng.poisson(power / 10)
    spend_before = np.where(rng.random(n) < 0.5, rng.gamma(2, power / 2), 0.0)
    purchased = rng.random(n) < 1 - np.exp(-power / 40)
    spend = np.where(purchased, rng.gamma(2, power / 2), 0.0)
    cutoff = np.repeat(cutoffs, rows_per_cutoff)
    return pa.table(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "cutoff_date": cutoff,
            "is_validation_cutoff": cutoff == cutoffs[-1],
            "spend_before": spend_before,
            "visits": pa.array(np.where(rng.random(n) < 0.05, None, visits), pa.float64()),
            "noise": rng.random(n),
            SETTINGS.purchase_label: purchased,
            SETTINGS.spend_label: spend,
            SETTINGS.baseline_column: spend_before,
        }
    )


def test_training_is_deterministic_and_beats_a_noisy_baseline() -> None:
    examples = _examples()
    first = train_models(examples, schema=SCHEMA, settings=SETTINGS)
    second = train_models(examples, schema=SCHEMA, settings=SETTINGS)
    features = SCHEMA.to_matrix(examples)
    assert np.array_equal(
        first.spend_booster.predict(features), second.spend_booster.predict(features)
    )
    assert first.validation_cutoff == "2025-03-01"
    assert (first.training_rows, first.validation_rows) == (3000, 1500)
    assert first.metric("lightgbm", "auc") > first.metric("last_period_spend", "auc") + 0.05
    assert first.metric("lightgbm", "normalized_gini") > first.metric(
        "last_period_spend", "normalized_gini"
    )


def test_one_cutoff_cannot_be_time_split() -> None:
    examples = _examples().filter(pa.compute.equal(pa.compute.field("cutoff_date"), "2025-03-01"))
    with pytest.raises(ValueError, match="at least 2 cutoffs"):
        train_models(examples, schema=SCHEMA, settings=SETTINGS)


def test_parity_gate_refuses_a_drifting_export() -> None:
    _gate("spend", ParityReport(rows=10, max_abs_diff=1.0, max_rel_diff=1e-12))
    with pytest.raises(ParityError, match="spend head"):
        _gate("spend", ParityReport(rows=10, max_abs_diff=1e-3, max_rel_diff=1e-6))
    with pytest.raises(ParityError, match="purchase head"):
        _gate("purchase", ParityReport(rows=10, max_abs_diff=1e-6, max_rel_diff=1e-12))


def test_registered_model_scores_the_same_whatever_the_batch_size(tmp_path: Path) -> None:
    examples = _examples(rows_per_cutoff=600)
    result = train_models(examples, schema=SCHEMA, settings=SETTINGS)
    registered = register_models(
        result,
        schema=SCHEMA,
        settings=SETTINGS,
        as_of="2025-04-01",
        scoring_features=SCHEMA.to_matrix(examples),
        artifacts_dir=tmp_path,
    )
    assert [model.model_version for model in list_models(tmp_path)] == [registered.model_version]
    model = load_scoring_model(registered.path)

    def scores(batch_rows: int) -> pa.Table:
        return pa.Table.from_batches(
            list(score_batches(examples.to_batches(max_chunksize=batch_rows), model=model))
        )

    small, large = scores(7), scores(100_000)
    assert small.equals(large)
    np.testing.assert_allclose(
        small.column("predicted_spend").to_numpy(),
        np.maximum(result.spend_booster.predict(SCHEMA.to_matrix(examples)), 0),
        rtol=1e-12,
    )
