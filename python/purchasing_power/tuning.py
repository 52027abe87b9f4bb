"""Optional hyperparameter search (Optuna) on the time split, one study per head.

Each trial fits the head on the training cutoffs with early stopping on the
validation cutoff, exactly as training does, and scores the validation loss at the
best round (binary log loss; tweedie negative log-likelihood). The sampler is seeded
and trials run one at a time, so the same data and seed find the same parameters.
Off by default: ``--vars '{tune_trials: 30}'`` or ``purchasing-power train --tune-trials 30``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from purchasing_power.train import HEADS, HeadParams, TimeSplit, TrainingSettings, fit_head


@dataclass(frozen=True)
class TuningResult:
    settings: TrainingSettings
    trials: int
    best_losses: dict[str, float]
    default_losses: dict[str, float]


def _loss(head: str, *, split: TimeSplit, settings: TrainingSettings) -> float:
    booster, _ = fit_head(head, split=split, settings=settings)
    (scores,) = booster.best_score.values()
    return float(next(iter(scores.values())))


def tune(split: TimeSplit, *, settings: TrainingSettings, trials: int) -> TuningResult:
    """Search each head's parameters; return settings with the best of each (or the
    defaults where no trial beat them)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen: dict[str, HeadParams] = {}
    best_losses: dict[str, float] = {}
    default_losses: dict[str, float] = {}
    for head in HEADS:

        def with_head(params: HeadParams, head: str = head) -> TrainingSettings:
            return _with_heads(settings, {head: params})

        def objective(trial: optuna.Trial, head: str = head) -> float:
            params = HeadParams(
                learning_rate=trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
                num_leaves=trial.suggest_int("num_leaves", 7, 127, log=True),
                min_data_in_leaf=trial.suggest_int("min_data_in_leaf", 10, 400, log=True),
                feature_fraction=trial.suggest_float("feature_fraction", 0.5, 1.0),
                lambda_l2=trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
            )
            return _loss(head, split=split, settings=with_head(params))

        study = optuna.create_study(
            direction="minimize", sampler=optuna.samplers.TPESampler(seed=settings.seed)
        )
        study.optimize(objective, n_trials=trials, n_jobs=1)
        default_losses[head] = _loss(head, split=split, settings=settings)
        if study.best_value < default_losses[head]:
            chosen[head] = HeadParams(**study.best_params)
            best_losses[head] = float(study.best_value)
        else:
            chosen[head] = settings.head(head)
            best_losses[head] = default_losses[head]
    return TuningResult(
        settings=_with_heads(settings, chosen),
        trials=trials,
        best_losses=best_losses,
        default_losses=default_losses,
    )


def _with_heads(settings: TrainingSettings, heads: Mapping[str, HeadParams]) -> TrainingSettings:
    """``settings`` with the parameters of the ``heads`` given (``HEADS`` names) replaced."""
    unknown = set(heads) - set(HEADS)
    if unknown:
        raise KeyError(f"no such heads: {sorted(unknown)}")
    return dataclasses.replace(
        settings,
        purchase=heads.get("purchase", settings.purchase),
        spend_given_purchase=heads.get("spend_given_purchase", settings.spend_given_purchase),
    )
