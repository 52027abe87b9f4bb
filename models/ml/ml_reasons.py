"""One row per scored user and reason rank: the top three TreeSHAP contributions to
the active model's predicted spend, streamed in record batches."""

from pathlib import Path

from purchasing_power.pipeline import explain


def model(dbt, session):
    dbt.config(materialized="table")
    active = dbt.ref("ml_models").filter("is_active").select("artifact_path").fetchall()[0]
    features = dbt.ref("user_features").filter("is_scoring_cutoff")
    batches = features.to_arrow_reader(int(dbt.config.get("scoring_batch_rows")))
    threads = int(dbt.config.get("scoring_threads"))
    return explain(batches, model_dir=Path(active[0]), num_threads=threads)
