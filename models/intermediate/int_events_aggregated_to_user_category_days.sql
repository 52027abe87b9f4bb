{#-
    One row per user, category and day with categorised clean activity: the base
    of breadth features.

    Incremental: a rerun rebuilds whole days, those of the validated rows (clean or
    rejected) from a run of int_events_validated that no row here comes from
    (delete+insert on activity_date; validated_at is the latest of a row's events).
    A day left with no categorised clean event loses its rows (the post-hook
    delete_rows_without_source).
-#}
with

{% if is_incremental() -%}
days_to_rebuild as materialized (

    select distinct event_date
    from {{ ref('int_events_validated') }}
    where
        event_date is not null
        and validated_at not in (select distinct validated_at from {{ this }})

),

{% endif -%}
int_events_validated as (

    select
        user_id,
        category,
        event_date,
        validated_at
    from {{ ref('int_events_validated') }}
    where is_clean and category is not null
    {% if is_incremental() -%}
        and event_date in (select event_date from days_to_rebuild)
    {%- endif %}

),

user_category_days_counted as (

    select
        user_id,
        category,
        event_date as activity_date,
        count(*) as count_events,
        max(validated_at) as validated_at
    from int_events_validated
    group by user_id, category, event_date

)

select * from user_category_days_counted
