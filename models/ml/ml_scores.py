"""One row per user scored at as_of by the active model, streamed in record batches."""

from pathlib import Path

from purchasing_power.pipeline import score


def model(dbt, session):
    dbt.config(materialized="table")
    active = dbt.ref("ml_models").filter("is_active").select("artifact_path").fetchall()[0]
    features = dbt.ref("user_features").filter("is_scoring_cutoff")
    batches = features.to_arrow_reader(int(dbt.config.get("scoring_batch_rows")))
    return score(batches, model_dir=Path(active[0]))
