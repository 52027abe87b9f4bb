{#-
    One row per model feature: the columns of user_features marked
    meta: {feature: true} in YAML. Training and scoring read their feature list
    from here; the description is the reason text shown to BI users.
-#}
-- depends_on: {{ ref('user_features') }}
{%- set features = get_feature_columns('user_features') %}

with

features_listed as (

    {% if features -%}
        {% for feature in features -%}
            select
                {{ loop.index }} as feature_position,
                '{{ feature.name }}' as feature_name,
                '{{ feature.description | replace("'", "''") }}' as feature_description,
                {{ feature.monotone_constraint }} as monotone_constraint
            {% if not loop.last %}union all{% endif %}
        {% endfor -%}
    {% else -%}
        select
            null::integer as feature_position,
            null::varchar as feature_name,
            null::varchar as feature_description,
            null::integer as monotone_constraint
        where false
    {%- endif %}

)

select * from features_listed
