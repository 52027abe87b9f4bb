{#-
    Post-hook of a model an incremental rerun rebuilds by key (delete+insert on
    `key`): deletes the rows whose `key` some `source` row matching `where` has,
    those a rerun replaces by no new row because their source row no longer
    qualifies (an event rejected since: `where` 'not is_clean'). The counterpart of
    delete_rows_without_source for a key whose every source row stays in the
    source: it builds its hash table on the few matching keys, not on every key.
    Nothing to do on a full build.
-#}
{% macro delete_rows_with_keys_in(key, source, where) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ key }} in (select {{ key }} from {{ source }} where {{ where }})
    {%- endif -%}
{%- endmacro %}
