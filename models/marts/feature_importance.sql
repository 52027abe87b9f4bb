{#- One row per model version, head and feature: total split gain, its share and rank. -#}
with

ml_models as (

    select
        model_version,
        feature_importance
    from {{ ref('ml_models') }}

),

importance_unnested as (

    select
        model_version,
        unnest(feature_importance) as importance
    from ml_models

),

importance_ranked as (

    select
        importance_unnested.model_version,
        importance.head,
        importance.feature_name,
        importance.gain,
        importance.gain / nullif(
            sum(importance.gain) over (
                partition by importance_unnested.model_version, importance.head
            ),
            0
        ) as gain_share,
        importance.splits as split_count,
        cast(
            row_number() over (
                partition by importance_unnested.model_version, importance.head
                order by importance.gain desc, importance.feature_name asc
            ) as integer
        ) as importance_rank
    from importance_unnested

)

select * from importance_ranked
