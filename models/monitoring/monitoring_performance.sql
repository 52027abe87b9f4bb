{#-
    One row per as_of and model_version of the score history: the realized
    performance of the published scores once the horizon has passed (the backtest:
    AUC of any purchase, normalized Gini, Spearman, top-decile capture, calibration
    ratio, bias %), the model's validation figures beside them, the last-period
    spend baseline on the same users, and the estimate made before the labels
    came (CBPE: expected AUC and buyers) with its error once they did.
-#}
with

monitoring_performance_computed as (

    select * from {{ ref('monitoring_performance_computed') }}

),

model_evaluations as (

    select
        model_version,
        metric,
        metric_value
    from {{ ref('model_evaluations') }}
    where method = 'lightgbm'

),

validation_pivoted as (

    select
        model_version,
        max(metric_value) filter (where metric = 'auc') as validation_auc,
        max(metric_value) filter (where metric = 'normalized_gini') as validation_normalized_gini,
        max(metric_value) filter (where metric = 'spearman') as validation_spearman,
        max(metric_value) filter (
            where metric = 'top_decile_capture'
        ) as validation_top_decile_capture,
        max(metric_value) filter (where metric = 'total_bias_percent') as validation_bias_percent
    from model_evaluations
    group by model_version

),

performance_compared as (

    select
        monitoring_performance_computed.as_of,
        monitoring_performance_computed.model_version,
        monitoring_performance_computed.horizon_days,
        monitoring_performance_computed.is_horizon_complete,
        monitoring_performance_computed.scored_users,
        monitoring_performance_computed.realized_buyers,
        monitoring_performance_computed.realized_spend,
        monitoring_performance_computed.predicted_spend,
        monitoring_performance_computed.realized_auc,
        monitoring_performance_computed.realized_normalized_gini,
        monitoring_performance_computed.realized_spearman,
        monitoring_performance_computed.realized_top_decile_capture,
        monitoring_performance_computed.realized_calibration_ratio,
        monitoring_performance_computed.realized_bias_percent,
        monitoring_performance_computed.estimated_buyers
        / nullif(monitoring_performance_computed.realized_buyers, 0) as realized_buyers_ratio,
        validation_pivoted.validation_auc,
        validation_pivoted.validation_normalized_gini,
        validation_pivoted.validation_spearman,
        validation_pivoted.validation_top_decile_capture,
        1 + validation_pivoted.validation_bias_percent / 100 as validation_calibration_ratio,
        validation_pivoted.validation_bias_percent,
        monitoring_performance_computed.baseline_auc,
        monitoring_performance_computed.baseline_normalized_gini,
        monitoring_performance_computed.baseline_spearman,
        monitoring_performance_computed.baseline_top_decile_capture,
        monitoring_performance_computed.baseline_bias_percent,
        monitoring_performance_computed.estimated_auc,
        monitoring_performance_computed.estimated_buyers,
        monitoring_performance_computed.estimated_auc
        - monitoring_performance_computed.realized_auc as estimated_auc_error,
        monitoring_performance_computed.estimated_buyers
        - monitoring_performance_computed.realized_buyers as estimated_buyers_error
    from monitoring_performance_computed
    left join validation_pivoted
        on monitoring_performance_computed.model_version = validation_pivoted.model_version

)

select * from performance_compared
