{#-
    Running totals of every additive user-day measure and of the gaps between
    purchase days, per user in date order, plus running extremes (first activity,
    first and last purchase, largest order). A sum
    over any window [start, cutoff) is the running total at the last active day
    before the cutoff minus the one at the last active day before the start: the
    cost of features grows with users x active days, not with events x cutoffs.

    Incremental: a user's totals depend on all its days, so a rerun rebuilds whole
    users (delete+insert on user_id): those with a day that the user-day base built
    in a run not seen here, or with a day here on or after the first such day (the
    base replaces those days whole). A user left with no day loses its rows (the
    post-hook delete_rows_without_source).
-#}
with

{% if is_incremental() -%}
days_not_yet_accumulated as materialized (

    {{ keys_from_unseen_runs(
        ref('int_events_aggregated_to_user_days'), 'built_at', 'user_id, activity_date'
    ) }}

),

users_to_rebuild as materialized (

    select user_id from days_not_yet_accumulated
    union
    select user_id from {{ this }}
    where activity_date >= (select min(activity_date) from days_not_yet_accumulated)

),

{% endif -%}
int_events_aggregated_to_user_days as (

    select
        user_id,
        activity_date,
        {% for measure in get_user_day_measures() -%}
            {{ measure }},
        {% endfor -%}
        max_order_amount,
        built_at
    from {{ ref('int_events_aggregated_to_user_days') }}
    {% if is_incremental() -%}
        where user_id in (select user_id from users_to_rebuild)
    {%- endif %}

),

purchase_gaps_measured as (

    -- days since the previous purchase day, on each purchase day after the first
    select
        *,
        case
            when count_purchase_days > 0
                then date_diff(
                    'day',
                    lag(activity_date) over (
                        partition by user_id, count_purchase_days > 0
                        order by activity_date
                    ),
                    activity_date
                )
        end as purchase_gap_days
    from int_events_aggregated_to_user_days

),

purchase_gaps_summed as (

    select
        * exclude (purchase_gap_days),
        cast(purchase_gap_days is not null as integer) as count_purchase_gaps,
        coalesce(purchase_gap_days, 0) as sum_purchase_gap_days,
        coalesce(purchase_gap_days * purchase_gap_days, 0) as sum_squared_purchase_gap_days
    from purchase_gaps_measured

),

totals_accumulated as (

    select
        user_id,
        activity_date,
        {% for measure in get_accumulated_measures() -%}
            {%- if get_measure_type(measure) == 'bigint' -%}
                cast(sum({{ measure }}) over user_history as bigint)
            {%- else -%}
                sum(cast({{ measure }} as decimal(18, 9))) over user_history
            {%- endif %} as cumulative_{{ measure }},
        {% endfor -%}
        min(activity_date) over user_history as first_activity_date,
        min(case when count_purchase_lines > 0 then activity_date end) over user_history
            as first_purchase_date,
        max(case when count_purchase_lines > 0 then activity_date end) over user_history
            as last_purchase_date,
        max(max_order_amount) over user_history as max_order_amount,
        built_at
    from purchase_gaps_summed
    window user_history as (
        partition by user_id
        order by activity_date
        rows between unbounded preceding and current row
    )

)

select * from totals_accumulated
