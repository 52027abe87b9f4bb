{#-
    A raw time value as a UTC timestamp, null where it is not one. Text is read as an
    ISO-8601 time (an offset is converted to UTC; none means UTC) or, failing that, as
    a Unix epoch number by its count of integer digits: 10 are seconds (a fraction
    allowed), 13 milliseconds, which covers 2001-09-09 to 2286-11-20. Other numbers
    (20250301, microseconds, negative ones) are not times, nor are infinite ones
    ('infinity'). A Parquet column of epoch numbers reaches this as text
    (read_raw_table), so CSV and Parquet read the same values the same way.
    arrives_as 'timestamp' (every file stores a timestamp or date) skips the text.
-#}
{% macro parse_timestamp(column, arrives_as='text') %}
    {%- set as_utc = "cast(try_cast(" ~ column ~ " as timestamptz) as timestamp)" -%}
    {%- if arrives_as == 'timestamp' -%}
        case when isfinite({{ column }}) then {{ as_utc }} end
    {%- else -%}
        {%- set text = "trim(cast(" ~ column ~ " as varchar))" -%}
        {#- DuckDB reads 'infinity' as a time: not an event's. A case, not coalesce: only
            the values that are no ISO time are tried as epoch numbers. -#}
        case
            when isfinite({{ as_utc }}) then {{ as_utc }}
            when regexp_full_match({{ text }}, '[0-9]{10}([.][0-9]+)?')
                then make_timestamp(cast(try_cast({{ text }} as decimal(20, 6)) * 1000000 as bigint))
            when regexp_full_match({{ text }}, '[0-9]{13}([.][0-9]+)?')
                then make_timestamp(cast(try_cast({{ text }} as decimal(20, 6)) * 1000 as bigint))
        end
    {%- endif -%}
{%- endmacro %}
