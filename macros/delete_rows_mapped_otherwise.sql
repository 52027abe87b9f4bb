{#-
    Post-hook of int_events_validated. A rerun replaces rows by event_id, but a row
    without one (rejected as missing_event_id) has no key: when the event_types seed
    maps its type otherwise, the model validates the row again from its file and this
    removes the old copy, the one whose event_type (and so amount) the seed no longer
    gives. Such rows are found by their reason, which is cheaper to scan than the
    event_id column (0.2 s against 1.7 s at 125M rows). Nothing to do on a full build.
-#}
{% macro delete_rows_mapped_otherwise(event_types) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where
            reject_reason = 'missing_event_id'
            and event_type is distinct from (
                select event_types.event_type
                from {{ event_types }} as event_types
                where event_types.raw_event_type = {{ this }}.raw_event_type
            )
    {%- endif -%}
{%- endmacro %}
