{#-
    One row per model version, method and decile of predicted spend: mean
    predicted vs mean actual spend on the model's validation cutoff.
-#}
with

ml_models as (

    select
        model_version,
        validation_cutoff_date,
        decile_calibration
    from {{ ref('ml_models') }}

),

deciles_unnested as (

    select
        model_version,
        cast(validation_cutoff_date as date) as validation_cutoff_date,
        unnest(decile_calibration) as calibration
    from ml_models

),

deciles_flattened as (

    select
        deciles_unnested.model_version,
        deciles_unnested.validation_cutoff_date,
        calibration.method,
        cast(calibration.decile as integer) as decile,
        calibration.rows as user_count,
        calibration.mean_predicted_spend,
        calibration.mean_actual_spend,
        calibration.mean_predicted_spend - calibration.mean_actual_spend as mean_spend_error
    from deciles_unnested

)

select * from deciles_flattened
