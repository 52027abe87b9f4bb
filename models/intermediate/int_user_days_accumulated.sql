{#-
    Running totals of every additive user-day measure and of the gaps between
    purchase days, per user in date order, plus running extremes (first activity,
    first and last purchase, largest order). A sum
    over any window [start, cutoff) is the running total at the last active day
    before the cutoff minus the one at the last active day before the start: the
    cost of features grows with users x active days, not with events x cutoffs.

    Incremental: a user's totals on a day depend on its days up to that one only, so
    a rerun restarts from the first day that the user-day base built in a run not seen
    here (the restart day): each base day from it on is accumulated again, on top of
    the user's totals at its last day here before it, and replaces the row of that
    user and day (delete+insert on both). The days before the restart day are the
    base's as they were, so their totals stand. A day here that the base no longer
    has (its events turned rejected) loses its row (the post-hook
    delete_rows_without_source).
-#}
{%- set accumulated_measures = get_accumulated_measures() -%}
with

{% if is_incremental() -%}
restart_day as materialized (

    select min(activity_date) as activity_date
    from ({{ keys_from_unseen_runs(
        ref('int_events_aggregated_to_user_days'), 'built_at', 'user_id, activity_date'
    ) }})

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
        where activity_date >= (select activity_date from restart_day)
    {%- endif %}

),

{% if is_incremental() -%}
last_days_before_restart as (

    select
        user_id,
        max(activity_date) as activity_date
    from {{ this }}
    where
        activity_date < (select activity_date from restart_day)
        and user_id in (select user_id from int_events_aggregated_to_user_days)
    group by user_id

),

carried as (

    -- each user's totals at its last day before the restart day
    select
        built.user_id,
        {% for measure in accumulated_measures -%}
            built.cumulative_{{ measure }},
        {% endfor -%}
        built.first_activity_date,
        built.first_purchase_date,
        built.last_purchase_date,
        built.max_order_amount
    from {{ this }} as built
    inner join last_days_before_restart
        on
            built.user_id = last_days_before_restart.user_id
            and built.activity_date = last_days_before_restart.activity_date

),

{% endif -%}
purchase_days_linked as (

    select
        *,
        lag(activity_date) over (
            partition by user_id, count_purchase_days > 0
            order by activity_date
        ) as previous_purchase_date
    from int_events_aggregated_to_user_days

),

purchase_gaps_measured as (

    -- days since the previous purchase day, on each purchase day after the first (on a
    -- rerun, the first rebuilt one's previous purchase day may come before the restart)
    select
        purchase_days_linked.*,
        case
            when purchase_days_linked.count_purchase_days > 0
                then date_diff(
                    'day',
                    {% if is_incremental() -%}
                        coalesce(
                            purchase_days_linked.previous_purchase_date,
                            carried.last_purchase_date
                        ),
                    {%- else -%}
                        purchase_days_linked.previous_purchase_date,
                    {%- endif %}
                    purchase_days_linked.activity_date
                )
        end as purchase_gap_days
    from purchase_days_linked
    {% if is_incremental() -%}
        left join carried
            on purchase_days_linked.user_id = carried.user_id
    {%- endif %}

),

purchase_gaps_summed as (

    select
        * exclude (previous_purchase_date, purchase_gap_days),
        cast(purchase_gap_days is not null as integer) as count_purchase_gaps,
        coalesce(purchase_gap_days, 0) as sum_purchase_gap_days,
        coalesce(purchase_gap_days * purchase_gap_days, 0) as sum_squared_purchase_gap_days
    from purchase_gaps_measured

),

totals_accumulated as (

    select
        user_id,
        activity_date,
        {% for measure in accumulated_measures -%}
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

){% if is_incremental() -%},

totals_carried_forward as (

    -- the days from the restart day on, on top of the totals carried from before it
    select
        totals_accumulated.user_id,
        totals_accumulated.activity_date,
        {% for measure in accumulated_measures -%}
            coalesce(carried.cumulative_{{ measure }}, 0)
            + totals_accumulated.cumulative_{{ measure }} as cumulative_{{ measure }},
        {% endfor -%}
        coalesce(carried.first_activity_date, totals_accumulated.first_activity_date)
            as first_activity_date,
        coalesce(carried.first_purchase_date, totals_accumulated.first_purchase_date)
            as first_purchase_date,
        coalesce(totals_accumulated.last_purchase_date, carried.last_purchase_date)
            as last_purchase_date,
        greatest(carried.max_order_amount, totals_accumulated.max_order_amount)
            as max_order_amount,
        totals_accumulated.built_at
    from totals_accumulated
    left join carried
        on totals_accumulated.user_id = carried.user_id

)
{%- endif %}

select * from {{ 'totals_carried_forward' if is_incremental() else 'totals_accumulated' }}
