{#-
    Post-hook of a model that an incremental rerun rebuilds by key (delete+insert on
    `key`): the rerun replaces the rows of every key it rebuilds, but a key left
    with no source row (a user whose every event turned rejected) has no new row to
    key that on, so its old rows go here. `key` is a column or a row of columns
    (`(user_id, activity_date)`); `source_key` (default `key`) is the key's column(s)
    in `source`, never null in rows matching `where`. Nothing to do on a full
    build. The source's keys are made distinct first: `not in` over the raw column
    builds its hash table on every source row (125 million events at the large bench
    scale ran out of a 5 GB memory limit), the distinct keys are one entry per key.
-#}
{% macro delete_rows_without_source(key, source, where='true', source_key=none) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ key }} not in (
            select distinct {{ source_key or key }} from {{ source }} where {{ where }}
        )
    {%- endif -%}
{%- endmacro %}
