{#-
    One row per user_id and cutoff_date: every feature family joined on the
    spine of users with activity before the cutoff. Columns whose YAML entry
    carries meta: {feature: true} are the model's features.
-#}
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

user_purchase_features as (

    select * from {{ ref('user_purchase_features') }}

),

user_engagement_features as (

    select * from {{ ref('user_engagement_features') }}

),

user_price_level_features as (

    select * from {{ ref('user_price_level_features') }}

),

user_breadth_features as (

    select * from {{ ref('user_breadth_features') }}

),

user_review_features as (

    select * from {{ ref('user_review_features') }}

),

user_profile_features as (

    select * from {{ ref('user_profile_features') }}

),

families_joined as (

    select
        int_users_joined_to_cutoffs.*,
        user_purchase_features.* exclude (user_id, cutoff_date, built_from),  -- noqa: RF02
        user_engagement_features.* exclude (user_id, cutoff_date, built_from),  -- noqa: RF02
        user_price_level_features.* exclude (user_id, cutoff_date, built_from),  -- noqa: RF02
        user_breadth_features.* exclude (user_id, cutoff_date, built_from),  -- noqa: RF02
        user_review_features.* exclude (user_id, cutoff_date, built_from),  -- noqa: RF02
        user_profile_features.* exclude (user_id, cutoff_date, built_from)  -- noqa: RF02
    from int_users_joined_to_cutoffs
    left join user_purchase_features
        on
            int_users_joined_to_cutoffs.user_id = user_purchase_features.user_id
            and int_users_joined_to_cutoffs.cutoff_date = user_purchase_features.cutoff_date
    left join user_engagement_features
        on
            int_users_joined_to_cutoffs.user_id = user_engagement_features.user_id
            and int_users_joined_to_cutoffs.cutoff_date = user_engagement_features.cutoff_date
    left join user_price_level_features
        on
            int_users_joined_to_cutoffs.user_id = user_price_level_features.user_id
            and int_users_joined_to_cutoffs.cutoff_date = user_price_level_features.cutoff_date
    left join user_breadth_features
        on
            int_users_joined_to_cutoffs.user_id = user_breadth_features.user_id
            and int_users_joined_to_cutoffs.cutoff_date = user_breadth_features.cutoff_date
    left join user_review_features
        on
            int_users_joined_to_cutoffs.user_id = user_review_features.user_id
            and int_users_joined_to_cutoffs.cutoff_date = user_review_features.cutoff_date
    left join user_profile_features
        on
            int_users_joined_to_cutoffs.user_id = user_profile_features.user_id
            and int_users_joined_to_cutoffs.cutoff_date = user_profile_features.cutoff_date

)

select * from families_joined
