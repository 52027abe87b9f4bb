"""The feature schema shared by training and scoring, so the two cannot drift.

The list of features is not written here: it is the dbt model ``feature_registry``
(columns of ``user_features`` marked ``meta: {feature: true}`` in YAML). This module
turns that list into the ordered float64 matrix that LightGBM and ONNX both read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class FeatureSpec:
    """One model feature: its column, the reason text for BI users, a monotone constraint."""

    name: str
    description: str
    monotone_constraint: int = 0


@dataclass(frozen=True)
class FeatureSchema:
    """The ordered features of a model."""

    features: tuple[FeatureSpec, ...]

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError(
                "feature_registry is empty: mark at least one column of user_features "
                "with `meta: {feature: true}` in models/features/_features__models.yml"
            )
        names = [feature.name for feature in self.features]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"feature_registry lists these features twice: {duplicated}")

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def monotone_constraints(self) -> list[int]:
        return [feature.monotone_constraint for feature in self.features]

    @classmethod
    def from_registry(cls, registry: pa.Table) -> FeatureSchema:
        """Build from the ``feature_registry`` table, ordered by ``feature_position``."""
        rows = registry.sort_by("feature_position").to_pylist()
        return cls(
            features=tuple(
                FeatureSpec(
                    name=row["feature_name"],
                    description=row["feature_description"] or row["feature_name"],
                    monotone_constraint=int(row["monotone_constraint"] or 0),
                )
                for row in rows
            )
        )

    @classmethod
    def from_card(cls, card_features: list[dict[str, object]]) -> FeatureSchema:
        return cls(features=tuple(FeatureSpec(**feature) for feature in card_features))  # type: ignore[arg-type]

    def to_card(self) -> list[dict[str, object]]:
        return [
            {
                "name": feature.name,
                "description": feature.description,
                "monotone_constraint": feature.monotone_constraint,
            }
            for feature in self.features
        ]

    def to_matrix(self, table: pa.Table | pa.RecordBatch) -> np.ndarray:
        """The features of ``table`` as a C-ordered float64 matrix; nulls become NaN."""
        missing = [name for name in self.names if name not in table.schema.names]
        if missing:
            raise KeyError(f"feature columns missing from the input table: {missing}")
        matrix = np.empty((table.num_rows, len(self.features)), dtype=np.float64)
        for position, name in enumerate(self.names):
            column = pc.cast(table.column(name), pa.float64())
            matrix[:, position] = column.to_numpy(zero_copy_only=False)
        return matrix
