{#-
    One row per as_of, model_version, column_name and comparison (compared_with:
    reference, the model's frozen training reference; previous_as_of, the
    profile of the model's previous scoring date): PSI and Jensen-Shannon over the
    reference's bins (nulls a bin of their own), the rows and null rows on both
    sides, and the level the thresholds seed (monitoring_thresholds, psi and js,
    per-column rows overriding the '*' row) gives: ok, warn or alert.

    PSI = sum over bins of (current share - baseline share) x ln(current / baseline),
    each share floored at 1e-4; Jensen-Shannon in bits (0 to 1).
    python/purchasing_power/monitoring.py holds the same definitions, which the tests
    compare with these.
-#}
with

monitoring_profiles as (

    select
        as_of,
        model_version,
        column_name,
        column_kind,
        bin_index,
        row_count,
        reference_rows,
        reference_source
    from {{ ref('monitoring_profiles') }}

),

monitoring_thresholds as (

    select
        check_name,
        column_name,
        warn_threshold,
        alert_threshold
    from {{ ref('monitoring_thresholds') }}

),

feature_importance as (

    select
        model_version,
        feature_name,
        gain
    from {{ ref('feature_importance') }}

),

gain_shared as (

    select
        model_version,
        feature_name,
        sum(gain) / nullif(sum(sum(gain)) over (partition by model_version), 0) as gain_share
    from feature_importance
    group by model_version, feature_name

),

profiled_dates as (

    select distinct
        as_of,
        model_version,
        column_name
    from monitoring_profiles

),

previous_dates_found as (

    select
        as_of,
        model_version,
        column_name,
        lag(as_of) over (partition by model_version, column_name order by as_of) as previous_as_of
    from profiled_dates

),

bins_paired as (

    select
        monitoring_profiles.as_of,
        monitoring_profiles.model_version,
        monitoring_profiles.column_name,
        monitoring_profiles.column_kind,
        'reference' as compared_with,
        cast(null as date) as compared_as_of,
        monitoring_profiles.reference_source,
        monitoring_profiles.bin_index,
        monitoring_profiles.reference_rows as baseline_rows,
        monitoring_profiles.row_count as current_rows
    from monitoring_profiles

    union all

    select
        monitoring_profiles.as_of,
        monitoring_profiles.model_version,
        monitoring_profiles.column_name,
        monitoring_profiles.column_kind,
        'previous_as_of' as compared_with,
        previous_dates_found.previous_as_of as compared_as_of,
        'profile of ' || cast(previous_dates_found.previous_as_of as varchar) as reference_source,
        monitoring_profiles.bin_index,
        previous_profiles.row_count as baseline_rows,
        monitoring_profiles.row_count as current_rows
    from monitoring_profiles
    inner join previous_dates_found
        on
            monitoring_profiles.as_of = previous_dates_found.as_of
            and monitoring_profiles.model_version = previous_dates_found.model_version
            and monitoring_profiles.column_name = previous_dates_found.column_name
    inner join monitoring_profiles as previous_profiles
        on
            previous_dates_found.previous_as_of = previous_profiles.as_of
            and monitoring_profiles.model_version = previous_profiles.model_version
            and monitoring_profiles.column_name = previous_profiles.column_name
            and monitoring_profiles.bin_index = previous_profiles.bin_index

),

shares_computed as (

    select
        *,
        baseline_rows / nullif(
            sum(baseline_rows) over (
                partition by as_of, model_version, column_name, compared_with
            ),
            0
        ) as baseline_share,
        current_rows / nullif(
            sum(current_rows) over (
                partition by as_of, model_version, column_name, compared_with
            ),
            0
        ) as current_share
    from bins_paired

),

drift_measured as (

    select
        as_of,
        model_version,
        column_name,
        any_value(column_kind) as column_kind,
        compared_with,
        any_value(compared_as_of) as compared_as_of,
        any_value(reference_source) as reference_source,
        cast(count(*) filter (where bin_index >= 0) as integer) as value_bins,
        cast(sum(baseline_rows) as bigint) as baseline_rows,
        cast(sum(current_rows) as bigint) as current_rows,
        cast(sum(baseline_rows) filter (where bin_index = -1) as bigint) as baseline_null_rows,
        cast(sum(current_rows) filter (where bin_index = -1) as bigint) as current_null_rows,
        list(baseline_rows order by bin_index) as baseline_bin_rows,
        list(current_rows order by bin_index) as current_bin_rows,
        sum(
            (greatest(current_share, 1e-4) - greatest(baseline_share, 1e-4))
            * ln(greatest(current_share, 1e-4) / greatest(baseline_share, 1e-4))
        ) as psi,
        0.5 * sum(
            case
                when baseline_share > 0
                    then
                        baseline_share
                        * log2(baseline_share / ((baseline_share + current_share) / 2))
                else 0
            end
        )
        + 0.5 * sum(
            case
                when current_share > 0
                    then
                        current_share * log2(current_share / ((baseline_share + current_share) / 2))
                else 0
            end
        ) as jensen_shannon
    from shares_computed
    group by as_of, model_version, column_name, compared_with

),

thresholds_attached as (

    select
        drift_measured.*,
        gain_shared.gain_share as feature_gain_share,
        coalesce(psi_column.warn_threshold, psi_default.warn_threshold) as psi_warn_threshold,
        coalesce(psi_column.alert_threshold, psi_default.alert_threshold) as psi_alert_threshold,
        coalesce(js_column.warn_threshold, js_default.warn_threshold) as js_warn_threshold,
        coalesce(js_column.alert_threshold, js_default.alert_threshold) as js_alert_threshold
    from drift_measured
    left join gain_shared
        on
            drift_measured.model_version = gain_shared.model_version
            and drift_measured.column_name = gain_shared.feature_name
    left join monitoring_thresholds as psi_column
        on psi_column.check_name = 'psi' and drift_measured.column_name = psi_column.column_name
    left join monitoring_thresholds as psi_default
        on psi_default.check_name = 'psi' and psi_default.column_name = '*'
    left join monitoring_thresholds as js_column
        on js_column.check_name = 'js' and drift_measured.column_name = js_column.column_name
    left join monitoring_thresholds as js_default
        on js_default.check_name = 'js' and js_default.column_name = '*'

),

levels_assigned as (

    select
        *,
        case
            when psi >= psi_alert_threshold or jensen_shannon >= js_alert_threshold then 'alert'
            when psi >= psi_warn_threshold or jensen_shannon >= js_warn_threshold then 'warn'
            else 'ok'
        end as drift_level
    from thresholds_attached

)

select * from levels_assigned
