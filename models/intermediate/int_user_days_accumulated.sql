{#-
    Running totals of every additive user-day measure, per user in date order,
    plus running extremes (first activity, last purchase, largest order). A sum
    over any window [start, cutoff) is the running total at the last active day
    before the cutoff minus the one at the last active day before the start: the
    cost of features grows with users x active days, not with events x cutoffs.
-#}
with

int_events_aggregated_to_user_days as (

    select
        user_id,
        activity_date,
        {% for measure in get_user_day_measures() -%}
            {{ measure }},
        {% endfor -%}
        max_order_amount
    from {{ ref('int_events_aggregated_to_user_days') }}

),

totals_accumulated as (

    select
        user_id,
        activity_date,
        {% for measure in get_user_day_measures() -%}
            cast(
                sum({{ measure }}) over user_history
                as {{ 'double' if measure.startswith('sum_') else 'bigint' }}
            ) as cumulative_{{ measure }},
        {% endfor -%}
        min(activity_date) over user_history as first_activity_date,
        min(case when count_purchase_lines > 0 then activity_date end) over user_history
            as first_purchase_date,
        max(case when count_purchase_lines > 0 then activity_date end) over user_history
            as last_purchase_date,
        max(max_order_amount) over user_history as max_order_amount
    from int_events_aggregated_to_user_days
    window user_history as (
        partition by user_id
        order by activity_date
        rows between unbounded preceding and current row
    )

)

select * from totals_accumulated
