{#- An empty relation with the given text columns and source_file: an absent optional raw table. -#}
{% macro empty_raw_table(columns) %}
    (
        select
            {% for column in columns -%}
                null::varchar as {{ column }},
            {% endfor -%}
            null::varchar as source_file
        where false
    )
{% endmacro %}
