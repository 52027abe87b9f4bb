{#-
    Post-hook of a model that an incremental rerun rebuilds by key (delete+insert on
    `key`): the rerun replaces the rows of every key it rebuilds, but a key left
    with no source row (a user whose every event turned rejected) has no new row to
    key that on, so its old rows go here. `key` is never null in `source` rows
    matching `where`. Nothing to do on a full build.
-#}
{% macro delete_rows_without_source(key, source, where='true') -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ key }} not in (select {{ key }} from {{ source }} where {{ where }})
    {%- endif -%}
{%- endmacro %}
