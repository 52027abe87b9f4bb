{#-
    One row per user, as_of and model_version: every score ever published, with
    where it was computed. Incremental: a build adds this build's scores and
    replaces the rows of the same user, as_of and model_version (delete+insert on
    that key), so rerunning an as_of never duplicates.

    History: no raw file can rebuild past scores, so `--full-refresh` leaves this table
    as it is (full_refresh false). Emptying it on purpose takes the var as well:
    `dbt build --full-refresh --select purchasing_power_score_history
    --vars '{reset_score_history: true}'`.
-#}
{{ config(full_refresh=none if var('reset_score_history') else false) }}
with

purchasing_power_scores as (

    select
        user_id,
        as_of,
        horizon_days,
        model_version,
        predicted_spend,
        purchase_probability,
        power_index,
        tier,
        scored_at
    from {{ ref('purchasing_power_scores') }}

),

ml_scores as (

    select
        user_id,
        model_status,
        execution_provider,
        scoring_graph
    from {{ ref('ml_scores') }}

),

scores_recorded as (

    select
        purchasing_power_scores.user_id,
        purchasing_power_scores.as_of,
        purchasing_power_scores.horizon_days,
        purchasing_power_scores.model_version,
        ml_scores.model_status,
        purchasing_power_scores.predicted_spend,
        purchasing_power_scores.purchase_probability,
        purchasing_power_scores.power_index,
        purchasing_power_scores.tier,
        ml_scores.execution_provider,
        ml_scores.scoring_graph,
        purchasing_power_scores.scored_at
    from purchasing_power_scores
    inner join ml_scores
        on purchasing_power_scores.user_id = ml_scores.user_id

)

select * from scores_recorded
