{#-
    Post-hook of int_events_sessionized: an incremental rerun replaces the rows of
    the users it rebuilds, but a user whose every event turned rejected has no new
    row to key that on, so its old rows go here (a clean row always has a user_id).
    Nothing to do on a full build.
-#}
{% macro delete_users_without_clean_events() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where user_id not in (
            select user_id from {{ ref('int_events_validated') }} where is_clean
        )
    {%- endif -%}
{%- endmacro %}
