{#-
    Schemas are named after the layer alone (staging, features, ml, marts), not
    dbt's default "<target schema>_<custom schema>" (main_marts): BI tools and
    analysts query marts.purchasing_power_scores, and one warehouse file holds one
    project, so there is nothing to prefix against.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
