{#-
    One row per event date and outcome (clean, rejected with each reason,
    duplicate dropped): how many raw rows ended there. The rows add up to
    data_quality_summary (tests/test_bi_end_to_end.py).
-#}
with

int_events_validated as (

    select
        event_date,
        is_clean,
        reject_reason,
        duplicate_rows_dropped
    from {{ ref('int_events_validated') }}

),

outcomes_counted as (

    select
        event_date,
        case when is_clean then 'clean' else 'rejected' end as outcome,
        reject_reason,
        count(*) as row_count
    from int_events_validated
    group by event_date, is_clean, reject_reason

),

duplicates_counted as (

    select
        event_date,
        'duplicate_dropped' as outcome,
        null as reject_reason,
        sum(duplicate_rows_dropped) as row_count
    from int_events_validated
    group by event_date
    having sum(duplicate_rows_dropped) > 0

),

outcomes_combined as (

    select
        event_date,
        outcome,
        cast(reject_reason as varchar) as reject_reason,
        cast(row_count as bigint) as row_count
    from outcomes_counted

    union all

    select
        event_date,
        outcome,
        cast(reject_reason as varchar) as reject_reason,
        cast(row_count as bigint) as row_count
    from duplicates_counted

)

select * from outcomes_combined
