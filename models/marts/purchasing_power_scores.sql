{#-
    One row per scored user: the output contract. A thin SQL model over the Python
    scores so that the contract is enforced and tiers come from the analysts' seed.
-#}
with

ml_scores as (

    select
        user_id,
        model_version,
        model_status,
        predicted_spend,
        purchase_probability,
        power_index
    from {{ ref('ml_scores') }}

),

int_cutoffs_derived as (

    select
        as_of_date,
        horizon_days
    from {{ ref('int_cutoffs_derived') }}
    where is_scoring_cutoff

),

power_tiers as (

    select
        tier,
        min_power_index,
        max_power_index
    from {{ ref('power_tiers') }}

),

tiers_assigned as (

    select
        ml_scores.user_id,
        int_cutoffs_derived.as_of_date as as_of,
        int_cutoffs_derived.horizon_days,
        ml_scores.model_version,
        ml_scores.model_status,
        ml_scores.predicted_spend,
        ml_scores.purchase_probability,
        ml_scores.power_index,
        power_tiers.tier,
        cast(current_timestamp as timestamp) as scored_at
    from ml_scores
    cross join int_cutoffs_derived
    left join power_tiers
        on
            ml_scores.power_index >= power_tiers.min_power_index
            and (
                ml_scores.power_index < power_tiers.max_power_index
                or power_tiers.max_power_index >= 100
            )

)

select * from tiers_assigned
