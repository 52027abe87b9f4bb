{#-
    The feature families, user_features, int_user_categories_counted_at_cutoffs
    and training_examples are incremental by cutoff (delete+insert on cutoff_date).
    Each row carries built_from: a hash of what its cutoff was built from and of
    the model's own SQL file. A rerun builds the cutoffs whose built_from the table
    does not carry: a new cutoff, a cutoff whose inputs were rebuilt since, and
    every cutoff once the model's SQL was edited, so that a new or changed feature
    needs no --full-refresh (the families sync their columns). Stamps are compared
    by value, never by order. The checksum is the file's: an edited macro the model
    calls, or a var it reads without hashing it, needs --full-refresh.

    This macro is that bookkeeping, as two CTEs placed after a model's import CTEs:
    cutoffs_fingerprinted, one row per cutoff with its built_from, and
    cutoffs_to_build, the cutoffs this run builds (macros/cutoffs_to_build.sql).
    The model reads its inputs where cutoff_date is in cutoffs_to_build, and its
    last step is attach_built_from.

    What a cutoff is built from: the rows of each model in `at_cutoff` ({model:
    columns}) that carry the cutoff's cutoff_date, and the rows of each model in
    `before_cutoff` ({model: (date column, columns)}) dated before the cutoff. The
    distinct values of those columns are the cutoff's stamps: each is hashed with
    its model's name and the hashes summed, so that neither the order rows are
    read in nor how many rows share a stamp matters. The days are summed before
    they meet the cutoffs (int_cutoffs_derived), so that a large daily table is
    read once. training_examples, whose labels read days after the cutoff too,
    composes its own from built_from and cutoffs_to_build.
-#}
{% macro select_cutoffs_to_build(at_cutoff={}, before_cutoff={}) -%}
cutoffs_fingerprinted as materialized (

    select
        cutoff_date,
        {{ built_from('sum(stamp)') }} as built_from
    from (
        {%- for model, columns in at_cutoff.items() %}
            {% if not loop.first %}union all{% endif %}
            select
                cutoff_date,
                sum(hash('{{ model }}', {{ columns }})) as stamp
            from (select distinct cutoff_date, {{ columns }} from {{ ref(model) }})
            group by cutoff_date
        {%- endfor %}
        {%- for model, dated in before_cutoff.items() %}
            {% if at_cutoff or not loop.first %}union all{% endif %}
            select
                cutoffs.cutoff_date,
                sum(days.stamp) as stamp
            from (select distinct cutoff_date from {{ ref('int_cutoffs_derived') }}) as cutoffs
            inner join (
                select
                    cast({{ dated[0] }} as date) as stamped_on,
                    sum(hash('{{ model }}', {{ dated[0] }}, {{ dated[1] }})) as stamp
                from (select distinct {{ dated[0] }}, {{ dated[1] }} from {{ ref(model) }})
                group by stamped_on
            ) as days
                on days.stamped_on < cutoffs.cutoff_date
            group by cutoffs.cutoff_date
        {%- endfor %}
    )
    group by cutoff_date

),

cutoffs_to_build as materialized (

    {{ cutoffs_to_build('cutoffs_fingerprinted') }}

),
{%- endmacro %}
