{#-
    The cutoff_date of every row of `fingerprints` (a relation of cutoff_date and
    built_from, one row per cutoff) that this table does not carry with that
    built_from: on a full build, and where the built table has no built_from yet,
    every cutoff.
-#}
{% macro cutoffs_to_build(fingerprints) -%}
    {#- a unit test's `this` is a fixture, given with built_from -#}
    {%- set has_built_from = this is string -%}
    {%- if is_incremental() and execute and this is not string -%}
        {%- set built = load_relation(this) -%}
        {%- set has_built_from = built is not none and 'built_from' in (
            adapter.get_columns_in_relation(built) | map(attribute='name') | map('lower') | list
        ) -%}
    {%- endif -%}
    {%- if is_incremental() and has_built_from -%}
        select cutoff_date
        from (
            select cutoff_date, built_from from {{ fingerprints }}
            except
            select distinct cutoff_date, built_from from {{ this }}
        )
    {%- else -%}
        select cutoff_date from {{ fingerprints }}
    {%- endif -%}
{%- endmacro %}
