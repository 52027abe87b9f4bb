"""The steps that dbt Python models (and the CLI) call: train-and-register, list the
registry, score. Each takes Arrow data and plain settings and returns Arrow data;
where the data comes from is the caller's business.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from purchasing_power.features import FeatureSchema
from purchasing_power.registry import RegisteredModel, list_models, register_models
from purchasing_power.scoring import SCORE_SCHEMA, load_scoring_model, score_batches
from purchasing_power.train import TrainingSettings, train_models

log = logging.getLogger(__name__)

METRIC_TYPE = pa.list_(
    pa.struct([("method", pa.string()), ("metric", pa.string()), ("value", pa.float64())])
)
MODELS_SCHEMA = pa.schema(
    [
        ("model_version", pa.string()),
        ("created_at", pa.string()),
        ("status", pa.string()),
        ("is_active", pa.bool_()),
        ("as_of_date", pa.string()),
        ("horizon_days", pa.int32()),
        ("validation_cutoff_date", pa.string()),
        ("training_rows", pa.int64()),
        ("validation_rows", pa.int64()),
        ("feature_count", pa.int32()),
        ("artifact_path", pa.string()),
        ("metrics", METRIC_TYPE),
    ]
)


@dataclass(frozen=True)
class RunSettings:
    """What a dbt run passes down: dbt vars and paths."""

    artifacts_dir: Path
    horizon_days: int
    seed: int = 42
    num_threads: int = 2


def train_and_register(
    examples: pa.Table,
    registry: pa.Table,
    scoring_features: pa.Table,
    *,
    as_of: str,
    settings: RunSettings,
) -> RegisteredModel:
    """Train both heads on ``training_examples`` and register them after the parity gate."""
    schema = FeatureSchema.from_registry(registry)
    training = TrainingSettings(
        horizon_days=settings.horizon_days, seed=settings.seed, num_threads=settings.num_threads
    )
    result = train_models(examples, schema=schema, settings=training)
    registered = register_models(
        result,
        schema=schema,
        settings=training,
        as_of=as_of,
        scoring_features=schema.to_matrix(scoring_features),
        artifacts_dir=settings.artifacts_dir,
    )
    log.info("registered %s at %s", registered.model_version, registered.path)
    return registered


def models_table(artifacts_dir: Path, *, active_version: str | None) -> pa.Table:
    """The registry as a table, one row per registered model version."""
    rows = []
    for model in list_models(artifacts_dir):
        card = model.card
        rows.append(
            {
                "model_version": model.model_version,
                "created_at": card["created_at"],
                "status": card["status"],
                "is_active": model.model_version == active_version,
                "as_of_date": card["as_of"],
                "horizon_days": card["horizon_days"],
                "validation_cutoff_date": card["validation_cutoff"],
                "training_rows": card["training_rows"],
                "validation_rows": card["validation_rows"],
                "feature_count": len(card["features"]),
                "artifact_path": str(model.path),
                "metrics": card["metrics"],
            }
        )
    return pa.Table.from_pylist(rows, schema=MODELS_SCHEMA)


def score(
    features: pa.RecordBatchReader, *, model_dir: Path, num_threads: int = 2
) -> pa.RecordBatchReader:
    """Stream scores for a stream of ``user_features`` batches."""
    model = load_scoring_model(model_dir, num_threads=num_threads)
    return pa.RecordBatchReader.from_batches(SCORE_SCHEMA, score_batches(features, model=model))
