{#- One row per model version, method and metric, on that model's validation cutoff. -#}
with

ml_models as (

    select
        model_version,
        model_status,
        validation_cutoff_date,
        metrics
    from {{ ref('ml_models') }}

),

metrics_unnested as (

    select
        model_version,
        model_status,
        cast(validation_cutoff_date as date) as validation_cutoff_date,
        unnest(metrics) as evaluation
    from ml_models

),

metrics_flattened as (

    select
        metrics_unnested.model_version,
        metrics_unnested.model_status,
        metrics_unnested.validation_cutoff_date,
        evaluation.method,
        evaluation.method = 'lightgbm' as is_model,
        evaluation.metric,
        evaluation.value as metric_value
    from metrics_unnested

)

select * from metrics_flattened
