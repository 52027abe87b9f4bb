"""One row per registered model version; trains one where the retrain policy says so
and marks the model that scores this build is_active (pipeline.choose_and_train).

retrain: auto (the default) trains where the monitoring tables the previous build left
say so (monitoring.read_retrain_reasons, docs/monitoring.md); true or false decide alone."""

import json
from pathlib import Path

from purchasing_power.monitoring import read_retrain_reasons
from purchasing_power.pipeline import RunSettings, choose_and_train, models_table, say_to_dbt
from purchasing_power.train import head_params_from


def model(dbt, session):
    dbt.config(materialized="table")
    # one plain dbt.config.get per key: dbt finds the keys a Python model reads statically
    retrain = str(dbt.config.get("retrain")).lower()
    pinned = dbt.config.get("model_version")
    candidates = dbt.config.get("candidates")
    knobs = dbt.config.get("head_params")  # JSON (the config renders it as a string)
    scoring_cutoff = dbt.ref("int_cutoffs_derived").filter("is_scoring_cutoff")
    ((as_of_date, label_horizon_days),) = scoring_cutoff.select(
        "as_of_date, label_horizon_days"
    ).fetchall()
    settings = RunSettings(
        artifacts_dir=Path(dbt.config.get("artifacts_path")),
        horizon_days=int(dbt.config.get("horizon_days")),
        seed=int(dbt.config.get("seed")),
        retrain=retrain in ("true", "1", "yes"),
        retrain_reasons=read_retrain_reasons(session, as_of=as_of_date)
        if retrain == "auto"
        else (),
        model_version=pinned or None,
        tune_trials=int(dbt.config.get("tune_trials")),
        num_threads=int(dbt.config.get("training_threads")),
        max_boost_rounds=int(dbt.config.get("max_boost_rounds")),
        validation_folds=int(dbt.config.get("validation_folds")),
        candidates=tuple(name.strip() for name in str(candidates).split(",") if name.strip()),
        max_fold_training_rows=int(dbt.config.get("max_fold_training_rows")),
        head_params=head_params_from(json.loads(knobs or "{}")),
        label_horizon_days=int(label_horizon_days),
    )
    registry = dbt.ref("feature_registry").to_arrow_table()
    examples = dbt.ref("training_examples")  # read, in batches, only when a model is trained
    choice = choose_and_train(
        lambda: examples,
        registry,
        dbt.ref("user_features").filter("is_scoring_cutoff").to_arrow_table(),
        dbt.ref("power_tiers").to_arrow_table(),
        as_of=str(as_of_date),
        settings=settings,
        say=say_to_dbt,
    )
    active = choice.active.model_version
    return models_table(settings.artifacts_dir, active_version=active, registry=registry)
