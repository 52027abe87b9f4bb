"""One row per user scored at as_of by the active model, streamed in record batches, on
CUDA with the tensor graph where a CUDA session starts, else on the CPU."""

from pathlib import Path

from purchasing_power.scoring import stream_scores


def model(dbt, session):
    dbt.config(materialized="table")
    active = dbt.ref("ml_models").filter("is_active").select("artifact_path").fetchall()[0]
    # in user_id order: onnxruntime's vector kernels can leave a row one ulp apart
    # depending on its neighbours, so the same users must come in the same order
    # however the table was built (incrementally or not)
    features = dbt.ref("user_features").filter("is_scoring_cutoff").order("user_id")
    return stream_scores(
        features.to_arrow_reader(int(dbt.config.get("scoring_batch_rows"))),
        model_dir=Path(active[0]),
        device=dbt.config.get("scoring_device"),
        num_threads=int(dbt.config.get("scoring_threads")),
    )
