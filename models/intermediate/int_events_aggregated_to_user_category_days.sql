{#-
    One row per user, category and day with categorised clean activity: the base
    of breadth features.
-#}
with

int_events_validated as (

    select
        user_id,
        category,
        event_date
    from {{ ref('int_events_validated') }}
    where is_clean and category is not null

),

user_category_days_counted as (

    select
        user_id,
        category,
        event_date as activity_date,
        count(*) as count_events
    from int_events_validated
    group by user_id, category, event_date

)

select * from user_category_days_counted
