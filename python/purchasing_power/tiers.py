"""Power tiers: the frozen reference distribution a prediction is placed among (the
power index, ``scoring.power_index``) and the tier (``seeds/power_tiers.csv``) that holds
each index, as ``purchasing_power_scores`` assigns it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

REFERENCE_QUANTILES = 101


@dataclass(frozen=True)
class Tier:
    """One row of ``seeds/power_tiers.csv``."""

    tier: str
    min_power_index: float
    max_power_index: float

    @classmethod
    def from_table(cls, table: pa.Table) -> tuple[Tier, ...]:
        rows = table.sort_by("min_power_index").to_pylist()
        return tuple(
            cls(row["tier"], float(row["min_power_index"]), float(row["max_power_index"]))
            for row in rows
        )


def assign_tiers(index: np.ndarray, tiers: Sequence[Tier]) -> np.ndarray:
    """The tier holding each power index, as ``purchasing_power_scores`` assigns it
    (``[min, max)``, the top tier closed at 100); ``None`` where no tier holds it."""
    assigned = np.full(len(index), None, dtype=object)
    for tier in reversed(tiers):  # the first matching tier wins, as in the SQL join
        holds = (index >= tier.min_power_index) & (
            (index < tier.max_power_index) | (tier.max_power_index >= 100)
        )
        assigned[holds] = tier.tier
    return assigned


def reference_quantiles(spend: np.ndarray) -> np.ndarray:
    """The frozen distribution the power index places predictions among."""
    result: np.ndarray = np.quantile(spend, np.linspace(0, 1, REFERENCE_QUANTILES))
    return result
