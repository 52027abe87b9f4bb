{#-
    One row per user and cutoff date, for every user with clean activity strictly
    before the cutoff: the spine every feature family is computed on.
-#}
with

int_user_days_accumulated as (

    select
        user_id,
        activity_date
    from {{ ref('int_user_days_accumulated') }}

),

int_cutoffs_derived as (

    select
        cutoff_date,
        is_scoring_cutoff,
        is_training_cutoff,
        is_validation_cutoff
    from {{ ref('int_cutoffs_derived') }}

),

users_first_seen as (

    select
        user_id,
        min(activity_date) as first_activity_date
    from int_user_days_accumulated
    group by user_id

),

users_crossed_with_cutoffs as (

    select
        users_first_seen.user_id,
        int_cutoffs_derived.cutoff_date,
        int_cutoffs_derived.is_scoring_cutoff,
        int_cutoffs_derived.is_training_cutoff,
        int_cutoffs_derived.is_validation_cutoff
    from users_first_seen
    inner join int_cutoffs_derived
        on users_first_seen.first_activity_date < int_cutoffs_derived.cutoff_date

)

select * from users_crossed_with_cutoffs
