"""Tiers: the tier that holds each power index."""

from __future__ import annotations

import numpy as np

from model_examples import TIERS
from purchasing_power.tiers import assign_tiers


def test_tiers_are_assigned_as_the_scores_table_assigns_them() -> None:
    index = np.array([0.0, 19.999, 20.0, 59.5, 80.0, 99.9, 100.0])
    assert assign_tiers(index, TIERS).tolist() == [
        "dormant", "dormant", "low", "medium", "premium", "premium", "premium",
    ]  # fmt: skip
