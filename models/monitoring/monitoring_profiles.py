"""One row per as_of, model_version, column and bin of the model's drift reference (the
card's, monitoring.references_table): the reference's rows in the bin and how many scored
users fell in it (monitoring.profiles_table). Outputs for every as_of and model of the
score history; features for this build's as_of and active model only (the features of
past scoring dates are not kept).

Incremental: a build profiles the score history's pairs it has not profiled, and its own
(as_of, active model) again, reading the references of those models only."""

from purchasing_power.monitoring import profiles_table, references_table


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
    ).to_arrow_table()
    versions = {active, *scores.column("model_version").unique().to_pylist()}
    models = dbt.ref("ml_models").select("model_version, artifact_path").order("model_version")
    references = references_table(
        [model for model in models.fetchall() if model[0] in versions],
        examples=dbt.ref("training_examples"),
        history=history,
    )
    features = dbt.ref("user_features").filter("is_scoring_cutoff").to_arrow_table()
    return profiles_table(
        references, scores=scores, features=features, feature_model=(as_of, active)
    )
