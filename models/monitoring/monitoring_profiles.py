"""One row per as_of, model_version, column and bin: how many scored users fell in each
bin of the model's reference (monitoring.profiles_table). Outputs for every as_of and
model of the score history; features for this build's as_of and active model only (the
features of past scoring dates are not kept).

Incremental: a build profiles the score history's pairs it has not profiled, and its own
(as_of, active model) again."""

from purchasing_power.monitoring import profiles_table


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        incremental_strategy="delete+insert",
        unique_key=["as_of", "model_version"],
    )
    active = dbt.ref("ml_models").filter("is_active").select("model_version").fetchall()[0][0]
    cutoffs = dbt.ref("int_cutoffs_derived").filter("is_scoring_cutoff").select("as_of_date")
    as_of = cutoffs.fetchall()[0][0]
    history = dbt.ref("purchasing_power_score_history")
    wanted = "true"
    if dbt.is_incremental:
        wanted = (
            f"(as_of = date '{as_of}' and model_version = '{active}') or (as_of, model_version)"
            f" not in (select (as_of, model_version) from {dbt.this})"
        )
    scores = history.query(
        "_rows",
        "select as_of, model_version, predicted_spend, purchase_probability, power_index, tier"
        f" from _rows where {wanted} order by as_of, model_version, user_id",
    )
    features = dbt.ref("user_features").filter("is_scoring_cutoff")
    return profiles_table(
        dbt.ref("monitoring_references").to_arrow_table(),
        scores=scores.to_arrow_table(),
        features=features.to_arrow_table(),
        feature_model=(as_of, active),
    )
