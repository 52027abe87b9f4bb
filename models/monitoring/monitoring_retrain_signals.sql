{#-
    One row per rule of the retrain policy (seeds/retrain_policy.csv) for the model
    that scored this build: its value, the policy's threshold and whether it
    triggers. Under retrain: auto the next build reads this table before it chooses
    a model (models/ml/ml_models.py) and trains where a rule triggers: realized
    performance below the last-period baseline (normalized Gini), more than the
    margin below validation (AUC or normalized Gini) or expected buyers off the
    realized ones; PSI
    against the reference past the alert threshold on features carrying the
    policy's share of the gain; the model older than the policy's days (measured
    again at the next as_of). The first three wait until the latest model for the
    horizon is min_days_between_retrains old, so that a drift a new model's
    training rows cannot yet show does not retrain every day.
-#}
with

ml_models as (

    select
        model_version,
        is_active,
        horizon_days,
        as_of_date
    from {{ ref('ml_models') }}

),

int_cutoffs_derived as (

    select as_of_date
    from {{ ref('int_cutoffs_derived') }}
    where is_scoring_cutoff

),

retrain_policy as (

    select
        rule_name,
        threshold
    from {{ ref('retrain_policy') }}

),

policy_pivoted as (

    select
        max(threshold) filter (where rule_name = 'realized_performance') as realized_margin,
        max(threshold) filter (where rule_name = 'realized_calibration') as calibration_margin,
        max(threshold) filter (where rule_name = 'feature_drift') as drift_gain_share,
        max(threshold) filter (where rule_name = 'model_age') as max_model_age_days,
        max(threshold) filter (
            where rule_name = 'min_days_between_retrains'
        ) as min_days_between_retrains
    from retrain_policy

),

monitoring_thresholds as (

    select alert_threshold as min_buyers
    from {{ ref('monitoring_thresholds') }}
    where check_name = 'min_buyers'

),

monitoring_performance as (

    select
        as_of,
        model_version,
        realized_auc,
        realized_normalized_gini,
        realized_buyers_ratio,
        validation_auc,
        validation_normalized_gini,
        baseline_normalized_gini
    from {{ ref('monitoring_performance') }}
    where
        is_horizon_complete
        and realized_buyers >= (select monitoring_thresholds.min_buyers from monitoring_thresholds)

),

monitoring_drift as (

    select
        as_of,
        model_version,
        column_name,
        psi,
        psi_alert_threshold,
        feature_gain_share
    from {{ ref('monitoring_drift') }}
    where column_kind = 'feature' and compared_with = 'reference'

),

active_model as (

    select
        ml_models.model_version,
        ml_models.horizon_days,
        cast(ml_models.as_of_date as date) as model_as_of,
        int_cutoffs_derived.as_of_date as observed_on,
        date_diff(
            'day',
            (
                select max(cast(latest.as_of_date as date)) from ml_models as latest
                where latest.horizon_days = ml_models.horizon_days
            ),
            int_cutoffs_derived.as_of_date
        ) as days_since_latest_training
    from ml_models
    cross join int_cutoffs_derived
    where ml_models.is_active

),

realized_latest as (

    select monitoring_performance.*
    from monitoring_performance
    inner join active_model
        on monitoring_performance.model_version = active_model.model_version
    qualify monitoring_performance.as_of = max(monitoring_performance.as_of) over ()

),

drift_summed as (

    select
        coalesce(sum(monitoring_drift.feature_gain_share) filter (
            where monitoring_drift.psi >= monitoring_drift.psi_alert_threshold
        ), 0) as drifted_gain_share,
        string_agg(
            monitoring_drift.column_name, ', ' order by monitoring_drift.column_name
        ) filter (
            where monitoring_drift.psi >= monitoring_drift.psi_alert_threshold
        ) as drifted_features
    from monitoring_drift
    inner join active_model
        on
            monitoring_drift.model_version = active_model.model_version
            and monitoring_drift.as_of = active_model.observed_on

),

rules_valued as (

    select
        'realized_below_baseline' as rule_name,
        baseline_normalized_gini - realized_normalized_gini as rule_value,
        0.0 as threshold,
        'realized normalized Gini ' || printf('%.3f', realized_normalized_gini)
        || ' below the last-period baseline''s ' || printf('%.3f', baseline_normalized_gini)
        || ' at as_of ' || cast(as_of as varchar) as detail
    from realized_latest

    union all

    select
        'realized_below_validation' as rule_name,
        greatest(
            realized_latest.validation_auc - realized_latest.realized_auc,
            realized_latest.validation_normalized_gini - realized_latest.realized_normalized_gini
        ) as rule_value,
        policy_pivoted.realized_margin as threshold,
        'realized AUC ' || printf('%.3f', realized_latest.realized_auc) || ' (validation '
        || printf('%.3f', realized_latest.validation_auc) || '), normalized Gini '
        || printf('%.3f', realized_latest.realized_normalized_gini) || ' (validation '
        || printf('%.3f', realized_latest.validation_normalized_gini) || ') at as_of '
        || cast(realized_latest.as_of as varchar) as detail
    from realized_latest
    cross join policy_pivoted

    union all

    select
        'realized_calibration' as rule_name,
        abs(ln(realized_latest.realized_buyers_ratio)) as rule_value,
        policy_pivoted.calibration_margin as threshold,
        'expected over realized buyers ' || printf('%.3f', realized_latest.realized_buyers_ratio)
        || ' at as_of ' || cast(realized_latest.as_of as varchar) as detail
    from realized_latest
    cross join policy_pivoted

    union all

    select
        'feature_drift' as rule_name,
        drift_summed.drifted_gain_share as rule_value,
        policy_pivoted.drift_gain_share as threshold,
        'features past the PSI alert threshold carry '
        || printf('%.0f', 100 * drift_summed.drifted_gain_share)
        || '% of the gain: ' || coalesce(drift_summed.drifted_features, 'none') as detail
    from drift_summed
    cross join policy_pivoted

),

rules_judged as (

    select
        rules_valued.rule_name,
        active_model.model_version,
        active_model.horizon_days,
        active_model.model_as_of,
        active_model.observed_on,
        rules_valued.rule_value,
        rules_valued.threshold,
        rules_valued.rule_value > rules_valued.threshold
        and active_model.days_since_latest_training >= policy_pivoted.min_days_between_retrains
            as is_triggered,
        rules_valued.detail
    from rules_valued
    cross join active_model
    cross join policy_pivoted

    union all

    select
        'model_age' as rule_name,
        active_model.model_version,
        active_model.horizon_days,
        active_model.model_as_of,
        active_model.observed_on,
        date_diff('day', active_model.model_as_of, active_model.observed_on) as rule_value,
        policy_pivoted.max_model_age_days as threshold,
        date_diff('day', active_model.model_as_of, active_model.observed_on)
        >= policy_pivoted.max_model_age_days as is_triggered,
        'the model scored as of ' || cast(active_model.model_as_of as varchar) as detail
    from active_model
    cross join policy_pivoted

)

select * from rules_judged
