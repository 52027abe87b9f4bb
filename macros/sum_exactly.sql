{#-
    sum(expression) that gives the same double whatever order the rows are added
    in. DuckDB aggregates in parallel, and adding doubles in another order moves
    the last bits, which moves tree thresholds and so model versions: summing as
    DECIMAL(18, scale) is exact, and the result is returned as a double.
-#}
{% macro sum_exactly(expression, scale=4) -%}
    cast(sum(cast({{ expression }} as decimal(18, {{ scale }}))) as double)
{%- endmacro %}
