"""The feature schema shared by training and scoring, so the two cannot drift.

The list of features is not written here: it is the dbt model ``feature_registry``
(columns of ``user_features`` marked ``meta: {feature: true}`` in YAML). This module
turns that list into the ordered float64 matrix that LightGBM and ONNX both read.

A schema may end with derived features: the buy-till-you-die quantities of
``btyd_features`` (the ``lightgbm_hybrid`` candidate), computed from ``user_features``
columns with the BG/NBD x Gamma-Gamma fit the schema carries (the scoring cutoff's,
frozen in the model card).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from purchasing_power.btyd_features import DESCRIPTIONS as BTYD_DESCRIPTIONS
from purchasing_power.btyd_features import NAMES as BTYD_NAMES
from purchasing_power.btyd_features import BtydFeatures


@dataclass(frozen=True)
class FeatureSpec:
    """One model feature: its column, the reason text for BI users, a monotone constraint."""

    name: str
    description: str
    monotone_constraint: int = 0
    # computed from other columns by the schema's BTYD fit, not read from a column
    derived: bool = False


@dataclass(frozen=True)
class FeatureSchema:
    """The ordered features of a model."""

    features: tuple[FeatureSpec, ...]
    # the fit the derived features are computed with (None: none derived, or not yet fitted)
    btyd: BtydFeatures | None = None

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
    def from_card(
        cls, card_features: list[dict[str, Any]], btyd: dict[str, Any] | None = None
    ) -> FeatureSchema:
        """From a card's ``features`` and, where some are derived, its ``btyd_features``."""
        return cls(
            features=tuple(FeatureSpec(**feature) for feature in card_features),
            btyd=BtydFeatures.from_card(btyd),
        )

    def to_card(self) -> list[dict[str, object]]:
        return [
            {
                "name": feature.name,
                "description": feature.description,
                "monotone_constraint": feature.monotone_constraint,
                **({"derived": True} if feature.derived else {}),
            }
            for feature in self.features
        ]

    @property
    def has_derived(self) -> bool:
        return any(feature.derived for feature in self.features)

    @property
    def column_names(self) -> list[str]:
        """The features read from columns (the others are derived)."""
        return [feature.name for feature in self.features if not feature.derived]

    def with_btyd(self, fitted: BtydFeatures | None) -> FeatureSchema:
        """These features plus the BTYD ones computed with ``fitted`` (at the end)."""
        own = tuple(feature for feature in self.features if not feature.derived)
        derived = tuple(
            FeatureSpec(name, description, 0, derived=True)
            for name, description in zip(BTYD_NAMES, BTYD_DESCRIPTIONS, strict=True)
        )
        return FeatureSchema(features=own + derived, btyd=fitted)

    def to_matrix(self, table: pa.Table | pa.RecordBatch) -> np.ndarray:
        """The features of ``table`` as a C-ordered float64 matrix; nulls become NaN.
        Derived features follow the columns, computed with the schema's BTYD fit."""
        missing = [name for name in self.column_names if name not in table.schema.names]
        if missing:
            raise KeyError(f"feature columns missing from the input table: {missing}")
        matrix = np.empty((table.num_rows, len(self.features)), dtype=np.float64)
        for position, name in enumerate(self.column_names):
            column = pc.cast(table.column(name), pa.float64())
            matrix[:, position] = column.to_numpy(zero_copy_only=False)
        if self.has_derived:
            if self.btyd is None:
                raise ValueError("the schema's BTYD features have no fit to compute them with")
            matrix[:, len(self.column_names) :] = self.btyd.columns(table)
        return matrix
