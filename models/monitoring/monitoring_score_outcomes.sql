{#-
    One row per user, as_of and model_version of the score history whose horizon
    has passed by this build's as_of: the published score beside what the user
    then actually spent (net, clean events in the label window
    [as_of, as_of + horizon_days), floored at 0, macros/is_in_label_window.sql)
    and the last-period spend baseline (the same window length before as_of).

    Incremental: a score is labeled once, in the first build whose as_of its
    horizon has passed; later builds add only the newly completed ones.
-#}
with

purchasing_power_score_history as (

    select
        user_id,
        as_of,
        horizon_days,
        model_version,
        predicted_spend,
        purchase_probability
    from {{ ref('purchasing_power_score_history') }}

),

int_cutoffs_derived as (

    select as_of_date
    from {{ ref('int_cutoffs_derived') }}
    where is_scoring_cutoff

),

int_events_validated as (

    select
        user_id,
        event_at,
        event_type,
        amount
    from {{ ref('int_events_validated') }}
    where is_clean and event_type in ('purchase', 'refund')

),

scores_completed as materialized (

    select distinct
        purchasing_power_score_history.as_of,
        purchasing_power_score_history.model_version,
        purchasing_power_score_history.horizon_days
    from purchasing_power_score_history
    cross join int_cutoffs_derived
    where
        purchasing_power_score_history.as_of
        + to_days(purchasing_power_score_history.horizon_days)
        <= int_cutoffs_derived.as_of_date
    {% if is_incremental() -%}
            and (purchasing_power_score_history.as_of, purchasing_power_score_history.model_version)
            not in (select (labeled.as_of, labeled.model_version) from {{ this }} as labeled)
        {%- endif %}

),

as_ofs_completed as materialized (

    select distinct
        as_of,
        horizon_days
    from scores_completed

),

events_windowed as (

    -- the horizon after each as_of (labels) and the same length before it (baseline)
    select
        as_ofs_completed.as_of,
        int_events_validated.user_id,
        int_events_validated.event_type,
        {{ is_in_label_window(
            'int_events_validated.event_at', 'as_ofs_completed.as_of', 'as_ofs_completed.horizon_days'
        ) }} as is_in_horizon,
        {{ get_net_amount('int_events_validated.event_type', 'int_events_validated.amount') }}
            as net_amount
    from int_events_validated
    inner join as_ofs_completed
        on {{ is_in_label_window(
            'int_events_validated.event_at',
            'as_ofs_completed.as_of - to_days(as_ofs_completed.horizon_days)',
            '2 * as_ofs_completed.horizon_days'
        ) }}

),

outcomes_summed as (

    select
        as_of,
        user_id,
        count(*) filter (where is_in_horizon and event_type = 'purchase') as count_purchase_lines,
        {{ sum_exactly('case when is_in_horizon then net_amount end') }} as net_spend,
        {{ sum_exactly('case when not is_in_horizon then net_amount end') }} as net_spend_before
    from events_windowed
    group by as_of, user_id

),

scores_labeled as (

    select
        purchasing_power_score_history.user_id,
        purchasing_power_score_history.as_of,
        purchasing_power_score_history.model_version,
        purchasing_power_score_history.horizon_days,
        purchasing_power_score_history.predicted_spend,
        purchasing_power_score_history.purchase_probability,
        coalesce(outcomes_summed.count_purchase_lines, 0) > 0 as has_purchased,
        greatest(coalesce(outcomes_summed.net_spend, 0), 0) as actual_spend,
        greatest(coalesce(outcomes_summed.net_spend_before, 0), 0) as last_period_spend
    from purchasing_power_score_history
    inner join scores_completed
        on
            purchasing_power_score_history.as_of = scores_completed.as_of
            and purchasing_power_score_history.model_version = scores_completed.model_version
    left join outcomes_summed
        on
            purchasing_power_score_history.as_of = outcomes_summed.as_of
            and purchasing_power_score_history.user_id = outcomes_summed.user_id

)

select * from scores_labeled
