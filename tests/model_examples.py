"""A small ``training_examples`` table built in code, shared by the model tests: three
cutoffs of synthetic users whose spend follows a latent purchasing power that the
features (and, less well, the baselines' inputs) reveal."""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import numpy as np
import onnx
import pyarrow as pa

from purchasing_power.features import FeatureSchema, FeatureSpec
from purchasing_power.registration import register_models
from purchasing_power.tiers import Tier
from purchasing_power.train import (
    LIGHTGBM_HURDLE,
    HeadParams,
    TrainingResult,
    TrainingSettings,
    time_split,
    train_models,
)

HEAD = HeadParams(min_data_in_leaf=20)
# One thread: the tests share two cores with everything else, and LightGBM's threads
# wait for each other when the cores are busy.
SETTINGS = TrainingSettings(
    horizon_days=30, max_boost_rounds=60, num_threads=1, purchase=HEAD, spend_given_purchase=HEAD
)
# one candidate: what registration, scoring and explanations are tested on
HURDLE_SETTINGS = dataclasses.replace(SETTINGS, candidates=(LIGHTGBM_HURDLE,))
SCHEMA = FeatureSchema(
    (
        FeatureSpec("spend_before", "Spend before the cutoff"),
        FeatureSpec("visits", "Visits before the cutoff"),
        FeatureSpec("noise", "Noise"),
    )
)
CUTOFFS = ("2025-01-01", "2025-02-01", "2025-03-01")


def examples(rows_per_cutoff: int = 1500, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = rows_per_cutoff * len(CUTOFFS)
    power = rng.lognormal(3, 1, n)
    visits = rng.poisson(power / 10)
    bought_before = rng.random(n) < 0.5
    spend_before = np.where(bought_before, rng.gamma(2, power / 2), 0.0)
    purchase_days = np.where(bought_before, 1 + rng.poisson(power / 30), 0)
    age = np.where(bought_before, rng.uniform(30, 300, n), np.nan)
    recency = np.where(bought_before, age * rng.random(n), np.nan)
    purchased = rng.random(n) < 1 - np.exp(-power / 40)
    spend = np.where(purchased, rng.gamma(2, power / 2), 0.0)
    cutoff = np.repeat(CUTOFFS, rows_per_cutoff)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_value = np.where(bought_before, spend_before / purchase_days, np.nan)
        gap = np.where(purchase_days > 1, recency / (purchase_days - 1), np.nan)
    since_last = age - recency
    windows = {}  # what the shop's RFM columns hold, from the same history
    for days in (30, 90, 365):
        inside = bought_before & (since_last <= days)
        share = np.minimum(1.0, days / np.where(bought_before, age, 1.0))
        windows[f"sum_purchase_amount_{days}d"] = np.where(inside, spend_before * share, 0.0)
        windows[f"count_orders_{days}d"] = np.where(
            inside, np.maximum(1, np.round(purchase_days * share)), 0.0
        )
    return pa.table(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "cutoff_date": cutoff,
            "is_validation_cutoff": cutoff == CUTOFFS[-1],
            "spend_before": spend_before,
            "visits": pa.array(np.where(rng.random(n) < 0.05, None, visits), pa.float64()),
            "noise": rng.random(n),
            SETTINGS.purchase_label: purchased,
            SETTINGS.spend_label: spend,
            SETTINGS.baseline_column: spend_before,
            "btyd_frequency": purchase_days - 1.0 + np.where(bought_before, 0, np.nan),
            "btyd_recency_days": recency,
            "btyd_age_days": age,
            "btyd_monetary_value": mean_value,
            "rfm_recency_days": age - recency,
            "rfm_frequency": np.where(bought_before, purchase_days, np.nan),
            "rfm_monetary_value": np.where(bought_before, spend_before, np.nan),
            # user_features columns that lightgbm_rfm and the BTYD features read
            "days_since_last_purchase": since_last,
            "days_since_first_purchase": age,
            "count_purchase_days_lifetime": purchase_days.astype(np.float64),
            "sum_purchase_amount_lifetime": np.where(bought_before, spend_before, np.nan),
            "sum_refund_amount_lifetime": np.where(bought_before, 0.0, np.nan),
            "avg_order_amount_lifetime": mean_value,
            "max_order_amount_lifetime": mean_value * 1.5,
            "avg_days_between_purchases_lifetime": gap,
            **windows,
        }
    )


@cache
def trained(
    rows_per_cutoff: int = 600, seed: int = 3, candidate: str = LIGHTGBM_HURDLE
) -> TrainingResult:
    """A model of one candidate trained on ``examples`` (once per test session and
    arguments)."""
    table = examples(rows_per_cutoff=rows_per_cutoff, seed=seed)
    settings = dataclasses.replace(SETTINGS, candidates=(candidate,))
    return train_models(time_split(table, schema=SCHEMA, settings=settings), settings=settings)


def with_wrong_probability(spend_graph: bytes) -> bytes:
    """A hurdle graph whose ``purchase_probability`` output is rewired to the conditional
    spend head, its ``prediction`` left as it was: a graph only a check of that output
    catches."""
    model = onnx.load_from_string(spend_graph)
    (node,) = [node for node in model.graph.node if node.name == "probability"]
    node.input[0] = "spend_given_purchase/prediction"
    return model.SerializeToString()


def register(result: TrainingResult, directory: Path, *, scoring: pa.Table | None = None):
    """``result`` registered in ``directory`` as of 2025-04-01 with the seed's tiers,
    scoring ``scoring`` (100 example rows a cutoff by default)."""
    scoring = scoring if scoring is not None else examples(rows_per_cutoff=100, seed=5)
    return register_models(
        result,
        schema=SCHEMA,
        settings=HURDLE_SETTINGS,
        as_of="2025-04-01",
        scoring_features=SCHEMA.to_matrix(scoring),
        tiers=TIERS,
        artifacts_dir=directory,
    )


# seeds/power_tiers.csv
TIERS_TABLE = pa.table(
    {
        "tier": ["dormant", "low", "medium", "high", "premium"],
        "tier_rank": [1, 2, 3, 4, 5],
        "min_power_index": [0.0, 20.0, 40.0, 60.0, 80.0],
        "max_power_index": [20.0, 40.0, 60.0, 80.0, 100.0],
    }
)
TIERS = Tier.from_table(TIERS_TABLE)
