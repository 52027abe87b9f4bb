{#-
    The rows of `relation` (a CTE with cutoff_date) with the built_from of their
    cutoff from `fingerprints` (one row per cutoff): a model's last step.
-#}
{% macro attach_built_from(relation, fingerprints='cutoffs_fingerprinted') -%}
    select
        {{ relation }}.*,
        {{ fingerprints }}.built_from
    from {{ relation }}
    inner join {{ fingerprints }}
        on {{ relation }}.cutoff_date = {{ fingerprints }}.cutoff_date
{%- endmacro %}
