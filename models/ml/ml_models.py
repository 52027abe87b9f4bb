"""One row per registered model version; trains and registers a new one on each build."""

from pathlib import Path

from purchasing_power.pipeline import RunSettings, models_table, train_and_register


def model(dbt, session):
    dbt.config(materialized="table")
    settings = RunSettings(
        artifacts_dir=Path(dbt.config.get("artifacts_path")),
        horizon_days=int(dbt.config.get("horizon_days")),
        seed=int(dbt.config.get("seed")),
    )
    scoring = dbt.ref("user_features").filter("is_scoring_cutoff")
    as_of = dbt.ref("int_cutoffs_derived").filter("is_scoring_cutoff").select("as_of_date")
    registered = train_and_register(
        dbt.ref("training_examples").to_arrow_table(),
        dbt.ref("feature_registry").to_arrow_table(),
        scoring.to_arrow_table(),
        as_of=str(as_of.fetchall()[0][0]),
        settings=settings,
    )
    return models_table(settings.artifacts_dir, active_version=registered.model_version)
