"""One row per as_of and model_version of the score history: the performance to expect
from the model's own purchase probabilities (CBPE) and, once the horizon has passed,
the realized performance of the model and of the last-period-spend baseline on the same
users, beside the model's validation figures (monitoring.performance_table).

Incremental: a build computes the pairs it has not computed, and those whose horizon
has passed since (the estimate is the same, the realized figures are added)."""

from purchasing_power.monitoring import performance_table, validation_figures


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        incremental_strategy="delete+insert",
        unique_key=["as_of", "model_version"],
    )
    history = dbt.ref("purchasing_power_score_history")
    outcomes = dbt.ref("monitoring_score_outcomes")
    distinct = "select distinct as_of, model_version from _rows"
    every = set(history.query("_rows", distinct).fetchall())
    labeled = set(outcomes.query("_rows", distinct).fetchall())
    done = set()
    if dbt.is_incremental:
        computed = session.sql(f"select as_of, model_version, is_horizon_complete from {dbt.this}")
        done = {
            (a, v) for a, v, complete in computed.fetchall() if complete or (a, v) not in labeled
        }
    wanted = sorted(every - done)
    values = ", ".join(f"(date '{as_of}', '{version}')" for as_of, version in wanted)
    pairs = f"(as_of, model_version) in (values {values})" if wanted else "false"
    keys = "as_of, model_version, user_id"
    scores = history.query(
        "_rows",
        "select as_of, model_version, horizon_days, purchase_probability, predicted_spend"
        f" from _rows where {pairs} order by {keys}",
    )
    labels = outcomes.query(
        "_rows",
        "select as_of, model_version, purchase_probability, predicted_spend, actual_spend,"
        f" has_purchased, last_period_spend from _rows where {pairs} order by {keys}",
    )
    # the validation figures: the scoring method's, its mean over the rolling-origin folds
    evaluations = dbt.ref("model_evaluations").filter("is_mean_over_folds and is_scoring_method")
    return performance_table(
        scores.to_arrow_table(),
        labels.to_arrow_table(),
        validation_figures(
            evaluations.select("model_version, metric, metric_value").to_arrow_table()
        ),
    )
