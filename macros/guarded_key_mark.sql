{#- The DuckDB comment of a table every write of which the guard checked, key and all. -#}
{% macro guarded_key_mark(guard=none) %}
    {%- set guard = guard or config.get('meta', {}).get('guarded_key') -%}
    {{- return('guarded_key: ' ~ guard['columns'] | join(', ')
        ~ (' where ' ~ guard['where'] if guard.get('where') else '')) -}}
{% endmacro %}
