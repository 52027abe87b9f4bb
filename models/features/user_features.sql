{#-
    One row per user_id and cutoff_date: every feature family joined on the
    spine of users with activity before the cutoff. Columns whose YAML entry
    carries meta: {feature: true} are the model's features.

    Incremental by cutoff (macros/cutoffs_to_build.sql): a cutoff's built_from
    hashes the built_from of every family at the cutoff and the cutoff's users
    and flags, so a rerun rebuilds the cutoffs a family rebuilt or whose users
    changed. A new family is one more name in the list below.
-#}
{%- set families = [
    'user_purchase_features',
    'user_engagement_features',
    'user_price_level_features',
    'user_breadth_features',
    'user_review_features',
    'user_profile_features',
] -%}

with

int_users_joined_to_cutoffs as (

    select
        user_id,
        cutoff_date,
        is_scoring_cutoff,
        is_training_cutoff,
        is_validation_cutoff
    from {{ ref('int_users_joined_to_cutoffs') }}

),

spine_fingerprinted as (

    select
        cutoff_date,
        sum(hash(user_id, is_scoring_cutoff, is_training_cutoff, is_validation_cutoff))
            as spine_hash
    from int_users_joined_to_cutoffs
    group by cutoff_date

),

{% for family in families -%}
    {{ family }}_fingerprinted as (

        select distinct
            cutoff_date,
            built_from
        from {{ ref(family) }}

    ),

{% endfor -%}
cutoffs_fingerprinted as materialized (

    {%- set inputs -%}
        spine_fingerprinted.spine_hash
        {%- for family in families %}, {{ family }}_fingerprinted.built_from{% endfor %}
    {%- endset %}

    select
        spine_fingerprinted.cutoff_date,
        {{ built_from(inputs) }} as built_from
    from spine_fingerprinted
    {% for family in families -%}
        left join {{ family }}_fingerprinted
            on spine_fingerprinted.cutoff_date = {{ family }}_fingerprinted.cutoff_date
    {% endfor %}

),

cutoffs_to_build as materialized (

    {{ cutoffs_to_build('cutoffs_fingerprinted') }}

),

{% for family in families -%}
    {{ family }} as (

        select * from {{ ref(family) }}
        where cutoff_date in (select cutoffs_to_build.cutoff_date from cutoffs_to_build)

    ),

{% endfor -%}
families_joined as (

    select
        int_users_joined_to_cutoffs.*,
        {% for family in families -%}
            {{ family }}.* exclude (user_id, cutoff_date, built_from),  -- noqa: RF02
        {% endfor -%}
        cutoffs_fingerprinted.built_from
    from int_users_joined_to_cutoffs
    inner join cutoffs_fingerprinted
        on int_users_joined_to_cutoffs.cutoff_date = cutoffs_fingerprinted.cutoff_date
    {% for family in families -%}
        left join {{ family }}
            on
                int_users_joined_to_cutoffs.user_id = {{ family }}.user_id
                and int_users_joined_to_cutoffs.cutoff_date = {{ family }}.cutoff_date
    {% endfor -%}
    where
        int_users_joined_to_cutoffs.cutoff_date in (
            select cutoffs_to_build.cutoff_date from cutoffs_to_build
        )

)

select * from families_joined
