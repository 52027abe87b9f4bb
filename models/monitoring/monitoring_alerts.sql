{#-
    One row per check past its warn or alert threshold at the latest date that
    check was observed: what (check_name, subject: a column or a metric, the
    model_version where it is about a model), how far past its threshold (value,
    the thresholds, excess over the one crossed), and since when (the first date of
    the run of observations past a threshold that reaches the latest). Checks:
    feature and output drift against the reference and the previous as_of (PSI,
    or Jensen-Shannon past its own thresholds), realized performance against
    validation and the baseline, estimated AUC against validation, clean rows per
    day against the trailing weeks, the rejected share. Thresholds:
    seeds/monitoring_thresholds.csv. The tests on this model, severity warn, are
    the alerts dbt shows.
-#}
with

monitoring_drift as (

    select
        as_of,
        model_version,
        column_name,
        column_kind,
        compared_with,
        psi,
        jensen_shannon,
        psi_warn_threshold,
        psi_alert_threshold,
        drift_level
    from {{ ref('monitoring_drift') }}

),

monitoring_performance as (

    select
        as_of,
        model_version,
        is_horizon_complete,
        realized_auc,
        realized_normalized_gini,
        realized_calibration_ratio,
        validation_calibration_ratio,
        realized_buyers_ratio,
        validation_auc,
        validation_normalized_gini,
        baseline_normalized_gini,
        estimated_auc,
        realized_buyers,
        estimated_buyers
    from {{ ref('monitoring_performance') }}

),

monitoring_data_volume as (

    select
        event_date,
        rejected_share,
        volume_ratio
    from {{ ref('monitoring_data_volume') }}

),

monitoring_thresholds as (

    select
        check_name,
        column_name,
        warn_threshold,
        alert_threshold
    from {{ ref('monitoring_thresholds') }}

),

drift_observed as (

    select
        column_kind || '_drift_' || compared_with as check_name,
        column_name as subject,
        model_version,
        as_of as observed_on,
        psi as observed_value,
        psi_warn_threshold as warn_threshold,
        psi_alert_threshold as alert_threshold,
        drift_level as observed_level,
        'PSI ' || printf('%.3f', psi) || ', Jensen-Shannon ' || printf('%.3f', jensen_shannon)
            as detail
    from monitoring_drift

),

metrics_observed as (

    select
        checks.check_name,
        checks.check_name as subject,
        monitoring_performance.model_version,
        monitoring_performance.as_of as observed_on,
        case checks.check_name
            when 'realized_auc_drop'
                then monitoring_performance.validation_auc - monitoring_performance.realized_auc
            when 'realized_gini_drop'
                then
                    monitoring_performance.validation_normalized_gini
                    - monitoring_performance.realized_normalized_gini
            when 'realized_calibration_error'
                then
                    abs(ln(
                        monitoring_performance.realized_calibration_ratio
                        / monitoring_performance.validation_calibration_ratio
                    ))
            when 'realized_buyers_error'
                then abs(ln(monitoring_performance.realized_buyers_ratio))
            when 'realized_below_baseline'
                then
                    monitoring_performance.baseline_normalized_gini
                    - monitoring_performance.realized_normalized_gini
            when 'estimated_auc_drop'
                then monitoring_performance.validation_auc - monitoring_performance.estimated_auc
        end as observed_value
    from monitoring_performance
    cross join (
        values
        ('realized_auc_drop'),
        ('realized_gini_drop'),
        ('realized_calibration_error'),
        ('realized_buyers_error'),
        ('realized_below_baseline'),
        ('estimated_auc_drop')
    ) as checks (check_name)
    -- judged over enough buyers only: on a few dozen, AUC and Gini move by chance
    where
        case
            when checks.check_name = 'estimated_auc_drop'
                then monitoring_performance.estimated_buyers
            when monitoring_performance.is_horizon_complete
                then monitoring_performance.realized_buyers
        end >= (
            select monitoring_thresholds.alert_threshold from monitoring_thresholds
            where monitoring_thresholds.check_name = 'min_buyers'
        )

),

volume_observed as (

    select
        checks.check_name,
        checks.check_name as subject,
        cast(null as varchar) as model_version,
        monitoring_data_volume.event_date as observed_on,
        case checks.check_name
            when 'data_volume_drop' then 1 - monitoring_data_volume.volume_ratio
            when 'rejected_share' then monitoring_data_volume.rejected_share
        end as observed_value
    from monitoring_data_volume
    cross join (values ('data_volume_drop'), ('rejected_share')) as checks (check_name)

),

values_observed as (

    select * from metrics_observed
    union all
    select * from volume_observed

),

values_judged as (

    select
        values_observed.check_name,
        values_observed.subject,
        values_observed.model_version,
        values_observed.observed_on,
        values_observed.observed_value,
        monitoring_thresholds.warn_threshold,
        monitoring_thresholds.alert_threshold,
        case
            when
                values_observed.observed_value >= monitoring_thresholds.alert_threshold
                then 'alert'
            when values_observed.observed_value >= monitoring_thresholds.warn_threshold then 'warn'
            else 'ok'
        end as observed_level,
        values_observed.check_name || ' ' || printf('%.3f', values_observed.observed_value)
            as detail
    from values_observed
    inner join monitoring_thresholds
        on
            values_observed.check_name = monitoring_thresholds.check_name
            and monitoring_thresholds.column_name = '*'
    where values_observed.observed_value is not null

),

observations_combined as (

    select * from drift_observed
    union all
    select * from values_judged

),

runs_found as (

    select
        *,
        max(observed_on) over (partition by check_name) as latest_observed_on,
        max(observed_on) filter (where observed_level = 'ok') over (
            partition by check_name, subject, model_version
        ) as last_ok_on
    from observations_combined

),

alerts_listed as (

    select
        check_name,
        subject,
        model_version,
        max_by(observed_level, observed_on) as alert_level,
        max(observed_on) as observed_on,
        min(observed_on) as since_date,
        max_by(observed_value, observed_on) as observed_value,
        max_by(warn_threshold, observed_on) as warn_threshold,
        max_by(alert_threshold, observed_on) as alert_threshold,
        max_by(detail, observed_on) as detail
    from runs_found
    where observed_on > coalesce(last_ok_on, date '0001-01-01')
    group by check_name, subject, model_version
    having max(observed_on) = max(latest_observed_on)

),

excess_measured as (

    select
        check_name,
        subject,
        model_version,
        alert_level,
        observed_on,
        since_date,
        observed_value,
        warn_threshold,
        alert_threshold,
        observed_value
        - case when alert_level = 'alert' then alert_threshold else warn_threshold end as excess,
        detail
    from alerts_listed

)

select * from excess_measured
