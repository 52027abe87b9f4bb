{#-
    One row per method (the active model and each baseline) and decile of
    predicted spend on the active model's validation cutoff: calibration (mean
    predicted vs actual spend) and lift (how much more the decile really spent
    than the average user), the deciles read top down.
-#}
with

model_decile_calibration as (

    select
        model_version,
        validation_cutoff_date,
        method,
        decile,
        user_count,
        mean_predicted_spend,
        mean_actual_spend
    from {{ ref('model_decile_calibration') }}

),

ml_models as (

    select
        model_version,
        model_status
    from {{ ref('ml_models') }}
    where is_active

),

active_deciles_picked as (

    select
        model_decile_calibration.model_version,
        ml_models.model_status,
        model_decile_calibration.validation_cutoff_date,
        model_decile_calibration.method,
        model_decile_calibration.method = 'lightgbm' as is_model,
        model_decile_calibration.decile,
        model_decile_calibration.user_count,
        model_decile_calibration.mean_predicted_spend,
        model_decile_calibration.mean_actual_spend,
        model_decile_calibration.mean_actual_spend
        * model_decile_calibration.user_count as total_actual_spend
    from model_decile_calibration
    inner join ml_models
        on model_decile_calibration.model_version = ml_models.model_version

),

lift_computed as (

    select
        model_version,
        model_status,
        validation_cutoff_date,
        method,
        is_model,
        decile,
        user_count,
        mean_predicted_spend,
        mean_actual_spend,
        mean_predicted_spend / nullif(mean_actual_spend, 0) as calibration_ratio,
        mean_actual_spend
        / nullif(
            sum(total_actual_spend) over (partition by method)
            / sum(user_count) over (partition by method),
            0
        ) as lift,
        sum(user_count) over (
            partition by method order by decile desc
            rows between unbounded preceding and current row
        ) / sum(user_count) over (partition by method) as cumulative_user_share,
        sum(total_actual_spend) over (
            partition by method order by decile desc
            rows between unbounded preceding and current row
        ) / nullif(sum(total_actual_spend) over (partition by method), 0)
            as cumulative_spend_capture
    from active_deciles_picked

)

select * from lift_computed
