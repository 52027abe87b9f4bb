{#-
    The raw row as JSON text: every contract column of `table_name`, each read from the
    column of the same name unless `renamed` maps it to another (a model that renamed a
    raw column passes {'event_time': 'event_at'}). Quarantined rows keep it, so that
    nothing of a rejected row is lost.
-#}
{% macro raw_values_json(table_name, renamed={}) %}
    {%- set contract = get_raw_table_contract(table_name) -%}
    cast(to_json({
        {%- for column in contract.required + contract.optional %}
        {{ column }}: {{ renamed.get(column, column) }}{{ ',' if not loop.last }}
        {%- endfor %}
    }) as varchar)
{%- endmacro %}
