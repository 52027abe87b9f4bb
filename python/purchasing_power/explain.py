"""Why a model predicts what it does: global importance and per-user reasons.

Importance is LightGBM's total split gain per feature and head.

Reasons are exact TreeSHAP contributions (``treeshap.TreeShap``: LightGBM's
``pred_contrib`` values, computed faster) to the log of predicted spend. With the
hurdle, ``log(spend) = log(P) + log(E[spend | purchase])``: the spend-given-purchase
head is a log-link model, so its contributions add up to its log term as they are; the
purchase head's contributions add up to a logit, and are rescaled by one factor per
user, ``(log sigmoid(f) - log sigmoid(f0)) / (f - f0)`` (``f`` the user's logit, ``f0`` the
head's expected logit), so that they add up to its log term. The rescaling keeps
every sign, and for each user ``base + sum(contributions) = log(predicted_spend)``.
A contribution of ``c`` multiplies predicted spend by ``exp(c)``: 0.69 doubles it.
Where the model's spend is its spend head alone (the direct combination), the
contributions are that head's, which add up to ``log(predicted_spend)`` as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa

from purchasing_power.features import FeatureSchema
from purchasing_power.train import HEADS, HURDLE, Heads
from purchasing_power.treeshap import TreeShap

TOP_REASONS = 3

REASONS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("model_version", pa.string()),
        ("reason_rank", pa.int32()),
        ("feature_name", pa.string()),
        ("feature_description", pa.string()),
        ("feature_value", pa.float64()),
        ("contribution", pa.float64()),
        ("spend_multiplier", pa.float64()),
    ]
)


@dataclass(frozen=True)
class Importance:
    head: str
    feature_name: str
    gain: float
    splits: int


def feature_importance(heads: Heads, *, schema: FeatureSchema) -> tuple[Importance, ...]:
    """Total gain and split count of every feature in every head."""
    rows: list[Importance] = []
    for head, label in zip(HEADS, heads.head_names, strict=True):
        booster = heads.booster(head)
        gains = booster.feature_importance(importance_type="gain")
        splits = booster.feature_importance(importance_type="split")
        rows.extend(
            Importance(label, name, float(gain), int(count))
            for name, gain, count in zip(schema.names, gains, splits, strict=True)
        )
    return tuple(rows)


def _log_sigmoid(logit: np.ndarray) -> np.ndarray:
    result: np.ndarray = -np.logaddexp(0.0, -logit)
    return result


@dataclass(frozen=True)
class HeadShap:
    """TreeSHAP of both heads, built once per model."""

    purchase: TreeShap
    spend_given_purchase: TreeShap
    combination: str = HURDLE

    @classmethod
    def of(cls, heads: Heads) -> HeadShap:
        return cls(
            TreeShap(heads.purchase), TreeShap(heads.spend_given_purchase), heads.combination
        )


def log_spend_contributions(
    shap: HeadShap, features: np.ndarray, *, num_threads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature contributions to log(predicted spend) ``[N, F]``, and the base ``[N]``."""
    spend = shap.spend_given_purchase.contributions(features, num_threads=num_threads)
    if shap.combination != HURDLE:
        return spend[:, :-1], spend[:, -1]
    purchase = shap.purchase.contributions(features, num_threads=num_threads)
    logit, expected_logit = purchase.sum(axis=1), purchase[:, -1]
    step = logit - expected_logit
    moved = np.abs(step) > 1e-12
    ratio = np.where(
        moved,
        (_log_sigmoid(logit) - _log_sigmoid(expected_logit)) / np.where(moved, step, 1.0),
        1.0 - 1.0 / (1.0 + np.exp(-logit)),  # the derivative, where the logit did not move
    )
    contributions = spend[:, :-1] + purchase[:, :-1] * ratio[:, None]
    base = spend[:, -1] + _log_sigmoid(expected_logit)
    return contributions, base


def top_reasons(contributions: np.ndarray, *, top: int = TOP_REASONS) -> np.ndarray:
    """Feature positions of each row's ``top`` largest contributions by size (ties: the
    earlier feature), ``[N, top]``."""
    order = np.lexsort(
        (
            np.broadcast_to(np.arange(contributions.shape[1]), contributions.shape),
            -np.abs(contributions),
        ),
        axis=1,
    )
    return order[:, :top]


@dataclass(frozen=True)
class Explainer:
    model_version: str
    schema: FeatureSchema
    shap: HeadShap
    num_threads: int

    def reasons(self, batch: pa.RecordBatch, *, top: int = TOP_REASONS) -> pa.RecordBatch:
        """The top reasons of every row of a ``user_features`` batch, one row per reason."""
        features = self.schema.to_matrix(batch)
        contributions, _ = log_spend_contributions(
            self.shap, features, num_threads=self.num_threads
        )
        top = min(top, features.shape[1])
        positions = top_reasons(contributions, top=top)
        rows = np.repeat(np.arange(batch.num_rows), top)
        columns = positions.reshape(-1)
        names = np.asarray(self.schema.names, dtype=object)
        descriptions = np.asarray([f.description for f in self.schema.features], dtype=object)
        chosen = contributions[rows, columns]
        user_ids = batch.column(batch.schema.get_field_index("user_id")).cast(pa.string())
        return pa.RecordBatch.from_arrays(
            [
                user_ids.take(pa.array(rows)),
                pa.array([self.model_version] * len(rows), pa.string()),
                pa.array(np.tile(np.arange(1, top + 1, dtype=np.int32), batch.num_rows)),
                pa.array(names[columns], pa.string()),
                pa.array(descriptions[columns], pa.string()),
                pa.array(features[rows, columns], pa.float64(), from_pandas=True),
                pa.array(chosen, pa.float64()),
                pa.array(np.exp(chosen), pa.float64()),
            ],
            schema=REASONS_SCHEMA,
        )


def load_explainer(model_dir: Path, *, num_threads: int = 1) -> Explainer:
    """The LightGBM text models and feature schema of a registered model."""
    card = json.loads((model_dir / "card.json").read_text())
    boosters = {
        head: lgb.Booster(model_file=str(model_dir / card["lightgbm_files"][head]))
        for head in HEADS
    }
    return Explainer(
        model_version=card["model_version"],
        schema=FeatureSchema.from_card(card["features"], card.get("btyd_features")),
        shap=HeadShap.of(Heads(**boosters, combination=card.get("combination", HURDLE))),
        num_threads=num_threads,
    )


def reason_batches(
    batches: Iterable[pa.RecordBatch], *, explainer: Explainer, top: int = TOP_REASONS
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield explainer.reasons(batch, top=top)
