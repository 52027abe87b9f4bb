{#-
    Each non-null `key` of the `source` rows with the latest `run_column` among its
    rows; on an incremental run, only the keys in the relation `rebuilt` (what
    keys_from_unseen_runs found). A rebuilt key's rows carry it, so that the next run
    has seen every run that touched the key, even one whose rows the model drops (a
    delivery of rejected rows only).
-#}
{% macro latest_run_per_key(source, run_column, key, rebuilt) %}
    select
        {{ key }},
        max({{ run_column }}) as {{ run_column }}
    from {{ source }}
    where
        {{ key }} is not null
        {% if is_incremental() -%}
            and {{ key }} in (select {{ key }} from {{ rebuilt }})
        {%- endif %}
    group by {{ key }}
{% endmacro %}
