{#-
    dbt's get_where_subquery (how a test's `where` config narrows the tested relation),
    with one placeholder more: __latest_guarded_write__ in a `where` stands for the rows
    the latest run wrote (rows_of_latest_guarded_write), a key test's scope on the big
    incremental models whose every write the key guard checked.
-#}
{% macro duckdb__get_where_subquery(relation) -%}
    {%- set where = config.get('where') or '' -%}
    {%- if '__latest_guarded_write__' in where -%}
        {%- set where = where | replace(
            '__latest_guarded_write__', '(' ~ rows_of_latest_guarded_write(relation) ~ ')'
        ) -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
