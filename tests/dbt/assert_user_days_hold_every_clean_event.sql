{#-
    The incremental user-day base must count every clean event of every day. It
    rebuilds only the days from its last built day minus user_days_lookback_days, so
    a change to an older day after it was built (events arriving later than the
    lookback, or a late copy of an old event_id with other values, which turns the old
    event into a conflicting duplicate) leaves that day stale. Each row returned is
    such a day: run `dbt build --full-refresh` (or --select the base with it).
-#}
with

clean_events_per_day as (

    select
        event_date,
        count(*) as clean_events
    from {{ ref('int_events_sessionized') }}
    group by event_date

),

base_events_per_day as (

    select
        activity_date as event_date,
        sum(count_events) as base_events
    from {{ ref('int_events_aggregated_to_user_days') }}
    group by activity_date

),

days_compared as (

    select
        coalesce(
            clean_events_per_day.event_date, base_events_per_day.event_date
        ) as event_date,
        coalesce(clean_events_per_day.clean_events, 0) as clean_events,
        coalesce(base_events_per_day.base_events, 0) as base_events
    from clean_events_per_day
    full outer join base_events_per_day
        on clean_events_per_day.event_date = base_events_per_day.event_date

)

select * from days_compared
where clean_events != base_events
