{#-
    One row per scored user and reason rank: why the model predicts the user's
    spend. A thin SQL model over the Python output so that the contract holds.
-#}
with

ml_reasons as (

    select
        user_id,
        model_version,
        reason_rank,
        feature_name,
        feature_description,
        feature_value,
        contribution,
        spend_multiplier
    from {{ ref('ml_reasons') }}

),

int_cutoffs_derived as (

    select as_of_date
    from {{ ref('int_cutoffs_derived') }}
    where is_scoring_cutoff

),

reasons_dated as (

    select
        ml_reasons.user_id,
        int_cutoffs_derived.as_of_date as as_of,
        ml_reasons.model_version,
        ml_reasons.reason_rank,
        ml_reasons.feature_name,
        ml_reasons.feature_description,
        ml_reasons.feature_value,
        ml_reasons.contribution,
        ml_reasons.spend_multiplier,
        ml_reasons.contribution > 0 as is_raising_spend
    from ml_reasons
    cross join int_cutoffs_derived

)

select * from reasons_dated
