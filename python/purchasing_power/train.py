"""Train the two heads on a time split: pure functions on Arrow tables and boosters.

Purchase probability is a binary LightGBM model; expected net spend a tweedie one.
Both are fitted on the earlier training cutoffs with early stopping on the latest
complete cutoff (never a random split: users repeat across cutoffs), evaluated there
against a last-period-spend baseline, then refitted on every cutoff with the number of
rounds the early stopping chose, so the registered model has seen the latest labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from purchasing_power import metrics
from purchasing_power.features import FeatureSchema

MODEL_METHOD = "lightgbm"
BASELINE_METHOD = "last_period_spend"


@dataclass(frozen=True)
class TrainingSettings:
    """Knobs of one training run. ``horizon_days`` names the label columns."""

    horizon_days: int
    seed: int = 42
    num_threads: int = 2
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 50
    max_boost_rounds: int = 1000
    early_stopping_rounds: int = 50
    tweedie_variance_power: float = 1.5

    @property
    def purchase_label(self) -> str:
        return f"label_purchased_next_{self.horizon_days}d"

    @property
    def spend_label(self) -> str:
        return f"label_spend_next_{self.horizon_days}d"

    @property
    def baseline_column(self) -> str:
        return f"baseline_spend_last_{self.horizon_days}d"


@dataclass(frozen=True)
class Evaluation:
    """One metric of one method on the validation rows."""

    method: str
    metric: str
    value: float


@dataclass(frozen=True)
class TrainingResult:
    purchase_booster: lgb.Booster
    spend_booster: lgb.Booster
    params: dict[str, dict[str, object]]
    best_iterations: dict[str, int]
    evaluations: tuple[Evaluation, ...]
    training_cutoffs: tuple[str, ...]
    validation_cutoff: str
    training_rows: int
    validation_rows: int
    validation_features: np.ndarray

    def metric(self, method: str, metric: str) -> float:
        for evaluation in self.evaluations:
            if evaluation.method == method and evaluation.metric == metric:
                return evaluation.value
        raise KeyError(f"no {metric} for {method}")


def _params(objective: str, *, schema: FeatureSchema, settings: TrainingSettings) -> dict:
    params: dict[str, object] = {
        "objective": objective,
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "min_data_in_leaf": settings.min_data_in_leaf,
        "feature_fraction": 0.9,
        "lambda_l2": 1.0,
        "seed": settings.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": settings.num_threads,
        "verbosity": -1,
        "monotone_constraints": schema.monotone_constraints,
    }
    if objective == "tweedie":
        params["tweedie_variance_power"] = settings.tweedie_variance_power
    return params


def _fit(
    params: dict,
    *,
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    feature_names: list[str],
    settings: TrainingSettings,
) -> lgb.Booster:
    train_set = lgb.Dataset(
        train[0], label=train[1], feature_name=feature_names, free_raw_data=False
    )
    valid_set = lgb.Dataset(valid[0], label=valid[1], reference=train_set)
    return lgb.train(
        params,
        train_set,
        num_boost_round=settings.max_boost_rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )


def _refit(params: dict, *, data: tuple[np.ndarray, np.ndarray], rounds: int, names: list[str]):
    dataset = lgb.Dataset(data[0], label=data[1], feature_name=names)
    return lgb.train(params, dataset, num_boost_round=max(rounds, 1))


def train_models(
    examples: pa.Table, *, schema: FeatureSchema, settings: TrainingSettings
) -> TrainingResult:
    """Fit, evaluate against the baseline, and refit both heads on ``training_examples``."""
    for column in (
        "cutoff_date",
        "is_validation_cutoff",
        settings.purchase_label,
        settings.spend_label,
        settings.baseline_column,
    ):
        if column not in examples.schema.names:
            raise KeyError(f"training_examples has no column {column!r}")
    cutoffs = sorted({str(value) for value in examples.column("cutoff_date").to_pylist()})
    if len(cutoffs) < 2:
        raise ValueError(
            f"training needs at least 2 cutoffs with complete {settings.horizon_days}-day labels "
            f"for a time split, found {len(cutoffs)} ({', '.join(cutoffs) or 'none'}): "
            "use more history, a shorter horizon_days, or a smaller cutoff_spacing_days"
        )
    if not (0 < np.count_nonzero(examples.column(settings.purchase_label)) < examples.num_rows):
        raise ValueError(
            f"training_examples needs both buyers and non-buyers within {settings.horizon_days} "
            f"days of its cutoffs; {np.count_nonzero(examples.column(settings.purchase_label))} of "
            f"{examples.num_rows} rows bought: check that purchase events map to 'purchase' in "
            "seeds/event_types.csv and carry an amount or a price"
        )
    is_valid = examples.column("is_validation_cutoff").to_numpy(zero_copy_only=False).astype(bool)
    features = schema.to_matrix(examples)
    purchased = pc.cast(examples.column(settings.purchase_label), pa.float64()).to_numpy()
    spend = pc.cast(examples.column(settings.spend_label), pa.float64()).to_numpy()
    baseline = pc.cast(examples.column(settings.baseline_column), pa.float64()).to_numpy()
    names = schema.names

    heads = {"purchase": ("binary", purchased), "spend": ("tweedie", spend)}
    params = {
        head: _params(objective, schema=schema, settings=settings)
        for head, (objective, _) in heads.items()
    }
    best_iterations: dict[str, int] = {}
    validation_predictions: dict[str, np.ndarray] = {}
    for head, (_, label) in heads.items():
        booster = _fit(
            params[head],
            train=(features[~is_valid], label[~is_valid]),
            valid=(features[is_valid], label[is_valid]),
            feature_names=names,
            settings=settings,
        )
        best_iterations[head] = int(booster.best_iteration or booster.current_iteration())
        validation_predictions[head] = booster.predict(
            features[is_valid], num_iteration=best_iterations[head]
        )

    evaluations = _evaluate(
        purchased=purchased[is_valid].astype(bool),
        spend=spend[is_valid],
        predicted_probability=validation_predictions["purchase"],
        predicted_spend=validation_predictions["spend"],
        baseline_spend=baseline[is_valid],
    )
    final = {
        head: _refit(
            params[head], data=(features, label), rounds=best_iterations[head], names=names
        )
        for head, (_, label) in heads.items()
    }
    return TrainingResult(
        purchase_booster=final["purchase"],
        spend_booster=final["spend"],
        params=params,
        best_iterations=best_iterations,
        evaluations=evaluations,
        training_cutoffs=tuple(cutoffs),
        validation_cutoff=cutoffs[-1],
        training_rows=int((~is_valid).sum()),
        validation_rows=int(is_valid.sum()),
        validation_features=features[is_valid],
    )


def _evaluate(
    *,
    purchased: np.ndarray,
    spend: np.ndarray,
    predicted_probability: np.ndarray,
    predicted_spend: np.ndarray,
    baseline_spend: np.ndarray,
) -> tuple[Evaluation, ...]:
    rows: list[Evaluation] = []
    for method, probability_score, spend_score in (
        (MODEL_METHOD, predicted_probability, predicted_spend),
        (BASELINE_METHOD, baseline_spend, baseline_spend),
    ):
        scores = metrics.probability_metrics(purchased, probability_score)
        scores.update(metrics.spend_metrics(spend, spend_score))
        rows.extend(Evaluation(method, name, value) for name, value in scores.items())
    return tuple(rows)
