"""Score feature batches with a registered model through onnxruntime.

Batches stream through; every output depends on its own row only, so the scores do
not depend on the batch size. The power index maps predicted spend through the
reference distribution frozen in the model card, so a user whose prediction does not
change keeps the same index whatever happens to everybody else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyarrow as pa

from purchasing_power.features import FeatureSchema

SCORE_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("model_version", pa.string()),
        ("predicted_spend", pa.float64()),
        ("purchase_probability", pa.float64()),
        ("power_index", pa.float64()),
        ("execution_provider", pa.string()),
    ]
)


@dataclass(frozen=True)
class ScoringModel:
    model_version: str
    schema: FeatureSchema
    reference_spend_quantiles: np.ndarray
    purchase: ort.InferenceSession
    spend: ort.InferenceSession

    @property
    def execution_provider(self) -> str:
        return self.spend.get_providers()[0]


# Two onnxruntime details would make a row's score depend on where it sits in a batch:
# TreeEnsemble sums trees in a different order for small batches, and the vectorised
# Exp/Sigmoid kernels compute the last few elements of an array (the remainder of the
# SIMD width) with scalar code, one ulp apart. Every run therefore gets at least
# MIN_ROWS_PER_RUN rows, padded with missing values up to a multiple of ROW_MULTIPLE,
# so no real row ever lands on either path and scores do not depend on batching.
MIN_ROWS_PER_RUN = 256
ROW_MULTIPLE = 64


def make_session(model: Path | bytes, *, num_threads: int = 2) -> ort.InferenceSession:
    """An onnxruntime CPU session for an exported model (a file or its bytes)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def predict(session: ort.InferenceSession, features: np.ndarray) -> np.ndarray:
    """The model's ``prediction`` output for each row of ``features`` (float64)."""
    rows = features.shape[0]
    padded_rows = max(MIN_ROWS_PER_RUN, -(-rows // ROW_MULTIPLE) * ROW_MULTIPLE)
    padding = np.full((padded_rows - rows, features.shape[1]), np.nan)
    features = np.vstack([features, padding])
    return session.run(["prediction"], {"features": features})[0].reshape(-1)[:rows]


def load_scoring_model(model_dir: Path, *, num_threads: int = 2) -> ScoringModel:
    card = json.loads((model_dir / "card.json").read_text())
    return ScoringModel(
        model_version=card["model_version"],
        schema=FeatureSchema.from_card(card["features"]),
        reference_spend_quantiles=np.asarray(card["reference_spend_quantiles"], dtype=np.float64),
        purchase=make_session(model_dir / card["files"]["purchase"], num_threads=num_threads),
        spend=make_session(model_dir / card["files"]["spend"], num_threads=num_threads),
    )


def power_index(predicted_spend: np.ndarray, reference_quantiles: np.ndarray) -> np.ndarray:
    """0-100: where each prediction falls in the frozen reference distribution.

    Linear between reference quantiles; where several quantiles share a value (many
    users predicted alike), the midpoint of their percentiles.
    """
    percentiles = np.linspace(0.0, 100.0, len(reference_quantiles))
    low = np.interp(predicted_spend, reference_quantiles, percentiles, left=0.0, right=100.0)
    high = -np.interp(
        -predicted_spend, -reference_quantiles[::-1], -percentiles[::-1], left=-100.0, right=0.0
    )
    return np.clip((low + high) / 2.0, 0.0, 100.0)


def score_batches(
    batches: Iterable[pa.RecordBatch], *, model: ScoringModel
) -> Iterator[pa.RecordBatch]:
    """Scores for each batch of ``user_features`` rows (with ``user_id``), in order."""
    provider = model.execution_provider
    for batch in batches:
        features = model.schema.to_matrix(batch)
        probability = predict(model.purchase, features)
        spend = np.maximum(predict(model.spend, features), 0.0)
        rows = batch.num_rows
        yield pa.RecordBatch.from_arrays(
            [
                batch.column(batch.schema.get_field_index("user_id")).cast(pa.string()),
                pa.array([model.model_version] * rows, pa.string()),
                pa.array(spend, pa.float64()),
                pa.array(probability, pa.float64()),
                pa.array(power_index(spend, model.reference_spend_quantiles), pa.float64()),
                pa.array([provider] * rows, pa.string()),
            ],
            schema=SCORE_SCHEMA,
        )
