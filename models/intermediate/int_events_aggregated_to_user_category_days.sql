{#-
    One row per user, category and day with categorised clean activity: the base
    of breadth features.

    Incremental: a rerun rebuilds whole days, those of the validated rows (clean or
    rejected) from a run of int_events_validated that no row here has seen
    (delete+insert on activity_date; each row carries the latest validated_at of its
    day's rows, so a run that only rejected rows is seen too, and built_at, when the run
    that wrote it started: what the key guard's tests read, dbt_project.yml; a table
    built before built_at needs --full-refresh, require_built_columns says so).
    A day left with no categorised clean event loses its rows (the post-hook
    delete_rows_without_source).
-#}
{{ require_built_columns(['built_at']) }}

with

{% if is_incremental() -%}
days_to_rebuild as materialized (

    {{ keys_from_unseen_runs(
        ref('int_events_validated'), 'validated_at', 'event_date', where='event_date is not null'
    ) }}

),

{% endif -%}
int_events_validated as (

    select
        user_id,
        category,
        event_date
    from {{ ref('int_events_validated') }}
    where is_clean and category is not null
    {% if is_incremental() -%}
        and event_date in (select event_date from days_to_rebuild)
    {%- endif %}

),

-- the latest run that validated any row of the day, clean or rejected
days_last_validated as (

    {{ latest_run_per_key(
        ref('int_events_validated'), 'validated_at', 'event_date', 'days_to_rebuild'
    ) }}

),

user_category_days_counted as (

    select
        user_id,
        category,
        event_date,
        count(*) as count_events
    from int_events_validated
    group by user_id, category, event_date

),

days_stamped as (

    select
        user_category_days_counted.user_id,
        user_category_days_counted.category,
        user_category_days_counted.event_date as activity_date,
        user_category_days_counted.count_events,
        days_last_validated.validated_at,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp) as built_at
    from user_category_days_counted
    inner join days_last_validated
        on user_category_days_counted.event_date = days_last_validated.event_date

)

select * from days_stamped
