{#-
    One row per build: raw rows in, and where each of them went. Nothing is lost:
    rows_in = rows_clean + rows_rejected + rows_duplicate_dropped (tested).
-#}
with

stg_raw__events as (

    select count(*) as rows_in
    from {{ ref('stg_raw__events') }}

),

int_events_validated as (

    select
        is_clean,
        duplicate_rows_dropped
    from {{ ref('int_events_validated') }}

),

rows_counted as (

    select
        count(*) filter (where is_clean) as rows_clean,
        count(*) filter (where not is_clean) as rows_rejected,
        coalesce(sum(duplicate_rows_dropped), 0) as rows_duplicate_dropped
    from int_events_validated

),

summary_joined as (

    select
        stg_raw__events.rows_in,
        rows_counted.rows_clean,
        rows_counted.rows_rejected,
        cast(rows_counted.rows_duplicate_dropped as bigint) as rows_duplicate_dropped
    from stg_raw__events
    cross join rows_counted

)

select * from summary_joined
