{#- Values as SQL string literals separated by commas ('a', 'b'), quotes doubled. -#}
{% macro sql_string_list(values) %}
    {{- return("'" ~ (values | map('replace', "'", "''") | join("', '")) ~ "'") -}}
{% endmacro %}
