"""Scores at a horizon longer than the labels the history holds.

Where two training cutoffs with complete ``horizon_days`` labels do not fit in the
history, ``int_cutoffs_derived`` places them for the longest label window that does
(``label_horizon_days``) and the model learns that window. Its scores are then extended
to the horizon by the population's purchase-rate curve: BG/NBD x Gamma-Gamma fitted on
every user's history before ``as_of`` (``fallback.fit``) gives the expected spend and
P(any purchase) of every buyer over both windows, and

* spend over the horizon = spend over the window x ``spend_factor`` (the buyers' total
  BTYD spend over the horizon over their total over the window);
* P(any purchase in the horizon) = 1 - (1 - P over the window) ^ ``probability_exponent``
  (the exponent that maps the buyers' mean BTYD probability over the window to theirs
  over the horizon).

Both maps are increasing, so the model's ranking of users is kept; only the level moves.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from purchasing_power import fallback

METHOD = "bg_nbd_purchase_rate_curve"


@dataclass(frozen=True)
class Extension:
    """How scores learnt over ``label_horizon_days`` become scores over ``horizon_days``."""

    label_horizon_days: int
    horizon_days: int
    spend_factor: float
    probability_exponent: float
    method: str = METHOD

    def to_card(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_card(cls, card: dict[str, Any] | None) -> Extension | None:
        return None if not card else cls(**card)

    def apply(self, spend: np.ndarray, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        extended = 1.0 - np.power(1.0 - np.clip(probability, 0.0, 1.0), self.probability_exponent)
        return spend * self.spend_factor, extended


def fit(scoring_features: pa.Table, *, horizon_days: int, label_horizon_days: int) -> Extension:
    """The purchase-rate curve of the users at the scoring cutoff, from the window the
    model learns to the horizon."""
    at_horizon = fallback.fit(scoring_features, horizon_days=horizon_days)
    at_window = fallback.BtydScorer(
        at_horizon.bg_nbd, at_horizon.gamma_gamma, label_horizon_days,
        at_horizon.users, at_horizon.buyers,
    )  # fmt: skip
    bought = fallback.btyd_inputs(scoring_features).bought
    spend_h, probability_h = at_horizon.predict(scoring_features)
    spend_w, probability_w = at_window.predict(scoring_features)
    total_w = float(spend_w[bought].sum())
    spend_factor = float(spend_h[bought].sum()) / total_w if total_w > 0 else 1.0
    mean_w = float(np.mean(probability_w[bought]))
    mean_h = float(np.mean(probability_h[bought]))
    if 0 < mean_w < 1 and 0 < mean_h < 1:
        exponent = math.log1p(-mean_h) / math.log1p(-mean_w)
    else:
        exponent = horizon_days / label_horizon_days
    return Extension(label_horizon_days, horizon_days, spend_factor, exponent)
