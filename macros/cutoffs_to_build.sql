{#-
    The feature families, user_features and training_examples are incremental by
    cutoff (delete+insert on cutoff_date). Each row carries built_from: a hash of
    what its cutoff was built from (`inputs`, an expression over the stamps of the
    model's inputs at the cutoff) and of the model's own SQL file. A rerun builds
    the cutoffs whose built_from this table does not carry: a new cutoff, a cutoff
    whose inputs were rebuilt since, and every cutoff once the model's SQL was
    edited, so that a new or changed feature needs no --full-refresh (the families
    sync their columns). Stamps are compared by value, never by order. The
    checksum is the file's: an edited macro the model calls, or a var it reads
    without hashing it, needs --full-refresh.
-#}
{% macro built_from(inputs) -%}
    hash({{ inputs }}, '{{ model.checksum.checksum }}')
{%- endmacro %}

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

{#-
    One row per cutoff of `source`: cutoff_date and the built_from of a model built
    from `source` alone, whose rows carry the run that built their cutoff in the
    column `stamp` (int_user_activity_windowed's cutoff_built_at).
-#}
{% macro fingerprint_cutoffs(source, stamp) -%}
    select
        cutoff_date,
        {{ built_from(stamp) }} as built_from
    from (select distinct cutoff_date, {{ stamp }} from {{ source }})
{%- endmacro %}

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
