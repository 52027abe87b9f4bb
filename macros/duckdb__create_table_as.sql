{#-
    dbt-duckdb's create_table_as, followed by the key guard (guard_unique_key) where the
    model sets guarded_key: every table an incremental or table model creates passes
    through here (the first build, the --full-refresh replacement, an incremental run's
    batch), so one override guards every write of the model.
-#}
{% macro duckdb__create_table_as(
    temporary, relation, compiled_code, language='sql', partitioned_by=none, sorted_by=none
) -%}
    {{ dbt.duckdb__create_table_as(
        temporary, relation, compiled_code, language,
        partitioned_by=partitioned_by, sorted_by=sorted_by
    ) }}
    {%- if language == 'sql' and config.get('meta', {}).get('guarded_key') %}
        {{ guard_unique_key(relation, temporary) }}
    {%- endif %}
{%- endmacro %}
