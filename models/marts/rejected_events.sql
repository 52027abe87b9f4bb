{#-
    One row per quarantined raw event (exact duplicates collapsed): the reason
    code, the file, and the row as it arrived.
-#}
with

int_events_validated as (

    select
        event_id,
        user_id,
        event_at,
        raw_event_type,
        reject_reason,
        source_file,
        raw_values,
        duplicate_rows_dropped
    from {{ ref('int_events_validated') }}
    where not is_clean

)

select * from int_events_validated
