"""One row per registered model version, column (each model feature and each output)
and bin: the drift reference frozen in the model's card (monitoring.references_table);
for a model registered before cards carried one, a fallback that reference_source
names."""

from purchasing_power.monitoring import references_table


def model(dbt, session):
    dbt.config(materialized="table")
    models = dbt.ref("ml_models").select("model_version, artifact_path").order("model_version")
    return references_table(
        models.fetchall(),
        examples=dbt.ref("training_examples"),
        history=dbt.ref("purchasing_power_score_history"),
    )
