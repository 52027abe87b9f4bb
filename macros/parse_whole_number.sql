{#-
    A raw value as an integer where it is a whole number within the integer range
    ('3', '3.0', 3.0 and 3 alike), null otherwise ('2.5', 'abc', NaN, infinity): a
    quantity or rating is never rounded into range. arrives_as 'integer' (every file
    stores an integer type) skips the test for a fraction.
-#}
{% macro parse_whole_number(column, arrives_as='text') %}
    {%- if arrives_as == 'integer' -%}
        try_cast({{ column }} as integer)
    {%- else -%}
        {%- set number = "try_cast(" ~ column ~ " as double)" -%}
        case
            when {{ number }} = trunc({{ number }}) then try_cast({{ number }} as integer)
        end
    {%- endif -%}
{%- endmacro %}
