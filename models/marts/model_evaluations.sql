{#-
    One row per model version, rolling-origin fold, method and metric: each fold's
    validation cutoff, and the mean over the folds (validation_cutoff_date null,
    is_mean_over_folds), the figures the choice of the scoring method reads.
-#}
with

ml_models as (

    select
        model_version,
        model_status,
        scoring_method,
        metrics,
        fold_metrics
    from {{ ref('ml_models') }}

),

fold_metrics_unnested as (

    select
        model_version,
        model_status,
        scoring_method,
        unnest(fold_metrics) as evaluation
    from ml_models

),

mean_metrics_unnested as (

    select
        model_version,
        model_status,
        scoring_method,
        unnest(metrics) as evaluation
    from ml_models

),

metrics_flattened as (

    select
        fold_metrics_unnested.model_version,
        fold_metrics_unnested.model_status,
        cast(fold_metrics_unnested.evaluation.validation_cutoff_date as date)
            as validation_cutoff_date,
        false as is_mean_over_folds,
        fold_metrics_unnested.evaluation.method,
        fold_metrics_unnested.evaluation.method = 'lightgbm' as is_model,
        fold_metrics_unnested.evaluation.method
        = replace(fold_metrics_unnested.scoring_method, '_extended', '') as is_scoring_method,
        fold_metrics_unnested.evaluation.metric,
        fold_metrics_unnested.evaluation.value as metric_value
    from fold_metrics_unnested

    union all

    select
        mean_metrics_unnested.model_version,
        mean_metrics_unnested.model_status,
        cast(null as date) as validation_cutoff_date,
        true as is_mean_over_folds,
        mean_metrics_unnested.evaluation.method,
        mean_metrics_unnested.evaluation.method = 'lightgbm' as is_model,
        mean_metrics_unnested.evaluation.method
        = replace(mean_metrics_unnested.scoring_method, '_extended', '') as is_scoring_method,
        mean_metrics_unnested.evaluation.metric,
        mean_metrics_unnested.evaluation.value as metric_value
    from mean_metrics_unnested

)

select * from metrics_flattened
