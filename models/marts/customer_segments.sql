{#-
    One row per scored user: the user's one customer segment, the first rule of
    seeds/segment_rules.csv by priority whose condition holds, and the inputs the
    conditions read (every column here but segment, segment_priority and
    segment_description), so that each segment carries its reasons. The rules are
    compiled into one case expression when the model runs (macros/get_segment_rules.sql
    checks each first). Only events strictly before as_of and scores of earlier as_of
    count.
-#}
{%- set inputs = {} -%}
{%- for column in model.columns.values()
    if column.name not in ['segment', 'segment_priority', 'segment_description'] -%}
    {%- do inputs.update({column.name: column.data_type}) -%}
{%- endfor -%}
{%- set rules = get_segment_rules(ref('segment_rules'), inputs) -%}

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
        tier
    from {{ ref('purchasing_power_scores') }}

),

purchasing_power_score_history as (

    select
        user_id,
        as_of,
        model_version,
        purchase_probability,
        power_index,
        scored_at
    from {{ ref('purchasing_power_score_history') }}

),

int_events_aggregated_to_user_days as (

    select
        user_id,
        activity_date,
        count_orders,
        count_purchase_lines,
        sum_purchase_amount,
        sum_refund_amount
    from {{ ref('int_events_aggregated_to_user_days') }}

),

user_price_bands as (

    select
        user_id,
        willingness_to_pay_index
    from {{ ref('user_price_bands') }}
    where is_overall

),

segment_rules as (

    select
        segment,
        priority,
        description
    from {{ ref('segment_rules') }}

),

scoring_date as (

    select distinct
        as_of,
        horizon_days
    from purchasing_power_scores

),

previous_scores_picked as (

    -- each user's latest score of an earlier as_of (the latest made at that as_of):
    -- a score of the same as_of by another model measures the model, not the user
    select
        purchasing_power_score_history.user_id,
        arg_max(
            {
                'as_of': purchasing_power_score_history.as_of,
                'model_version': purchasing_power_score_history.model_version,
                'purchase_probability': purchasing_power_score_history.purchase_probability,
                'power_index': purchasing_power_score_history.power_index
            },
            (purchasing_power_score_history.as_of, purchasing_power_score_history.scored_at)
        ) as previous
    from purchasing_power_score_history
    cross join scoring_date
    where purchasing_power_score_history.as_of < scoring_date.as_of
    group by purchasing_power_score_history.user_id

),

previous_scores as (

    select
        previous_scores_picked.user_id,
        previous_scores_picked.previous.as_of,
        previous_scores_picked.previous.model_version,
        previous_scores_picked.previous.purchase_probability,
        previous_scores_picked.previous.power_index
    from previous_scores_picked

),

activity_summarised as (

    select
        int_events_aggregated_to_user_days.user_id,
        min(int_events_aggregated_to_user_days.activity_date) as first_activity_date,
        max(int_events_aggregated_to_user_days.activity_date) as last_activity_date,
        max(int_events_aggregated_to_user_days.activity_date) filter (
            where int_events_aggregated_to_user_days.count_purchase_lines > 0
        ) as last_purchase_date,
        sum(int_events_aggregated_to_user_days.count_orders) as count_orders_lifetime,
        -- summed exactly: the user-days' order differs between a rerun and a full build
        {{ sum_exactly(
            'int_events_aggregated_to_user_days.sum_purchase_amount'
            ~ ' - int_events_aggregated_to_user_days.sum_refund_amount'
        ) }} as lifetime_spend,
        coalesce({{ sum_exactly(
            'case when int_events_aggregated_to_user_days.activity_date'
            ~ ' >= scoring_date.as_of - scoring_date.horizon_days'
            ~ ' then int_events_aggregated_to_user_days.sum_purchase_amount'
            ~ ' - int_events_aggregated_to_user_days.sum_refund_amount end'
        ) }}, 0) as past_spend
    from int_events_aggregated_to_user_days
    cross join scoring_date
    where int_events_aggregated_to_user_days.activity_date < scoring_date.as_of
    group by int_events_aggregated_to_user_days.user_id

),

segment_inputs_assembled as (

    select
        purchasing_power_scores.user_id,
        purchasing_power_scores.as_of,
        purchasing_power_scores.horizon_days,
        purchasing_power_scores.model_version,
        purchasing_power_scores.predicted_spend,
        purchasing_power_scores.purchase_probability,
        purchasing_power_scores.power_index,
        purchasing_power_scores.tier,
        100 * percent_rank() over (order by purchasing_power_scores.predicted_spend)
            as predicted_spend_percentile,
        coalesce(activity_summarised.past_spend, 0) as past_spend,
        100 * percent_rank() over (order by coalesce(activity_summarised.past_spend, 0))
            as past_spend_percentile,
        coalesce(activity_summarised.lifetime_spend, 0) as lifetime_spend,
        100 * percent_rank() over (order by coalesce(activity_summarised.lifetime_spend, 0))
            as lifetime_spend_percentile,
        cast(coalesce(activity_summarised.count_orders_lifetime, 0) as bigint)
            as count_orders_lifetime,
        cast(date_diff(
            'day', activity_summarised.first_activity_date, purchasing_power_scores.as_of
        ) as integer) as days_since_first_event,
        cast(date_diff(
            'day', activity_summarised.last_activity_date, purchasing_power_scores.as_of
        ) as integer) as days_since_last_event,
        cast(date_diff(
            'day', activity_summarised.last_purchase_date, purchasing_power_scores.as_of
        ) as integer) as days_since_last_purchase,
        user_price_bands.willingness_to_pay_index,
        previous_scores.user_id is not null as has_previous_score,
        previous_scores.as_of as previous_as_of,
        previous_scores.model_version as previous_model_version,
        previous_scores.power_index as previous_power_index,
        previous_scores.purchase_probability as previous_purchase_probability,
        purchasing_power_scores.power_index
        - previous_scores.power_index as power_index_change,
        purchasing_power_scores.purchase_probability
        - previous_scores.purchase_probability as purchase_probability_change
    from purchasing_power_scores
    left join activity_summarised
        on purchasing_power_scores.user_id = activity_summarised.user_id
    left join user_price_bands
        on purchasing_power_scores.user_id = user_price_bands.user_id
    left join previous_scores
        on purchasing_power_scores.user_id = previous_scores.user_id

),

segments_matched as (

    -- the first rule by priority that holds; null where none does (a test fails then)
    select
        *,
        {% if rules -%}
            case
                {%- for rule in rules %}
                    when ({{ rule.condition }}) then {{ rule.priority }}
                {%- endfor %}
            end
        {%- else -%}
            cast(null as integer)
        {%- endif %} as matched_priority
    from segment_inputs_assembled

),

segments_named as (

    select
        segments_matched.user_id,
        segments_matched.as_of,
        segments_matched.horizon_days,
        segments_matched.model_version,
        segment_rules.segment,
        segment_rules.priority as segment_priority,
        segment_rules.description as segment_description,
        segments_matched.predicted_spend,
        segments_matched.purchase_probability,
        segments_matched.power_index,
        segments_matched.tier,
        segments_matched.predicted_spend_percentile,
        segments_matched.past_spend,
        segments_matched.past_spend_percentile,
        segments_matched.lifetime_spend,
        segments_matched.lifetime_spend_percentile,
        segments_matched.count_orders_lifetime,
        segments_matched.days_since_first_event,
        segments_matched.days_since_last_event,
        segments_matched.days_since_last_purchase,
        segments_matched.willingness_to_pay_index,
        segments_matched.has_previous_score,
        segments_matched.previous_as_of,
        segments_matched.previous_model_version,
        segments_matched.previous_power_index,
        segments_matched.previous_purchase_probability,
        segments_matched.power_index_change,
        segments_matched.purchase_probability_change
    from segments_matched
    left join segment_rules
        on segments_matched.matched_priority = segment_rules.priority

)

select * from segments_named
