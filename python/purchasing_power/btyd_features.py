"""Buy-till-you-die quantities as model features (the ``lightgbm_hybrid`` candidate).

At each cutoff, BG/NBD x Gamma-Gamma is fitted by maximum likelihood on the purchase
histories of that cutoff's users, which hold only events before it (no label is read,
so nothing after the cutoff can leak in), and gives every buyer four numbers the trees
may split on:

``btyd_probability_alive``
    P(the customer has not dropped out | history) (Fader, Hardie & Lee 2005, eq. 11).
``btyd_expected_purchase_days``
    Expected purchase days over the next ``window_days`` (the label window).
``btyd_expected_purchase_value``
    Gamma-Gamma's expected value of one purchase day.
``btyd_expected_spend``
    Their product: BTYD's own spend forecast over the window.

Users who never bought get missing values (the trees send them their own way). The
inputs are the ``user_features`` columns ``fallback.btyd_inputs`` reads, so training
rows and scoring rows are derived by the same code. Training fits one model per
cutoff; the scoring cutoff gets its own fit, frozen into the model card, which scoring
applies batch by batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from purchasing_power import baselines, fallback

NAMES = (
    "btyd_probability_alive",
    "btyd_expected_purchase_days",
    "btyd_expected_purchase_value",
    "btyd_expected_spend",
)
DESCRIPTIONS = (
    "Chance the customer is still active (BG/NBD)",
    "Expected purchase days ahead (BG/NBD)",
    "Expected value of a purchase day (Gamma-Gamma)",
    "Expected spend ahead (BG/NBD x Gamma-Gamma)",
)
INPUT_COLUMNS = fallback.INPUT_COLUMNS
# The fit reads at most this many buyers (every k-th in row order): four and three
# parameters need far fewer, and the fit is repeated for every cutoff.
FIT_MAX_BUYERS = 50_000


@dataclass(frozen=True)
class BtydFeatures:
    """A BG/NBD x Gamma-Gamma fit at one cutoff and the window its forecasts cover."""

    bg_nbd: baselines.BgNbd
    gamma_gamma: baselines.GammaGamma
    window_days: int

    def to_card(self) -> dict[str, float]:
        return {
            "window_days": self.window_days,
            "bg_nbd_r": self.bg_nbd.r,
            "bg_nbd_alpha": self.bg_nbd.alpha,
            "bg_nbd_a": self.bg_nbd.a,
            "bg_nbd_b": self.bg_nbd.b,
            "gamma_gamma_p": self.gamma_gamma.p,
            "gamma_gamma_q": self.gamma_gamma.q,
            "gamma_gamma_gamma": self.gamma_gamma.gamma,
        }

    @classmethod
    def from_card(cls, card: dict[str, Any] | None) -> BtydFeatures | None:
        if not card:
            return None
        return cls(
            baselines.BgNbd(card["bg_nbd_r"], card["bg_nbd_alpha"], card["bg_nbd_a"],
                            card["bg_nbd_b"]),
            baselines.GammaGamma(card["gamma_gamma_p"], card["gamma_gamma_q"],
                                 card["gamma_gamma_gamma"]),
            int(card["window_days"]),
        )  # fmt: skip

    def columns(self, table: pa.Table | pa.RecordBatch) -> np.ndarray:
        """The ``NAMES`` columns of every row of ``table``, ``[N, 4]``."""
        inputs = fallback.btyd_inputs(table)
        bought = inputs.bought
        out = np.full((len(bought), len(NAMES)), np.nan)
        if not bought.any():
            return out
        frequency = inputs.frequency[bought]
        args = (self.bg_nbd, frequency, inputs.recency[bought], inputs.age[bought])
        _, alive, dropped = baselines._bg_nbd_terms(*args)
        out[bought, 0] = np.exp(alive - np.logaddexp(alive, dropped))
        out[bought, 1] = baselines.expected_purchases(*args, horizon=float(self.window_days))
        out[bought, 2] = baselines.expected_purchase_value(
            self.gamma_gamma, frequency + 1, np.maximum(inputs.monetary_value[bought], 0.0)
        )
        out[bought, 3] = out[bought, 1] * out[bought, 2]
        return out


def fit(table: pa.Table | pa.RecordBatch, *, window_days: int) -> BtydFeatures:
    """BG/NBD x Gamma-Gamma on the buyers of ``table`` (one cutoff's users)."""
    inputs = fallback.btyd_inputs(table)
    buyers = np.flatnonzero(inputs.bought)
    if len(buyers) < 2:
        raise ValueError(
            f"the BTYD features need purchases from at least 2 users at a cutoff, found "
            f"{len(buyers)}"
        )
    # every k-th buyer in the order of their histories, not of the rows (which the
    # warehouse gives in no fixed order at the scoring cutoff): the same users give the
    # same sample and the same fit
    buyers = buyers[
        baselines.canonical_order(
            inputs.frequency[buyers], inputs.recency[buyers], inputs.age[buyers],
            inputs.monetary_value[buyers],
        )
    ]  # fmt: skip
    step = -(-len(buyers) // FIT_MAX_BUYERS)
    chosen = buyers[::step]
    bg_nbd = baselines.fit_bg_nbd(
        inputs.frequency[chosen], inputs.recency[chosen], inputs.age[chosen]
    )
    valued = chosen[inputs.monetary_value[chosen] > 0]
    gamma_gamma = baselines.fit_gamma_gamma(
        inputs.frequency[valued] + 1, inputs.monetary_value[valued]
    )
    return BtydFeatures(bg_nbd, gamma_gamma, window_days)
