{#- Profile attributes from the optional users table: one row per user_id and cutoff_date. -#}
with

int_users_joined_to_cutoffs as (

    select * from {{ ref('int_users_joined_to_cutoffs') }}

),

stg_raw__users as (

    select
        user_id,
        min(signed_up_at) as signed_up_at
    from {{ ref('stg_raw__users') }}
    group by user_id

),

-- incremental: a cutoff is built again when its users or their sign-ups before it changed
{{ select_cutoffs_to_build(at_cutoff={'int_users_joined_to_cutoffs': 'user_id'},
    before_cutoff={'stg_raw__users': ('signed_up_at', 'user_id')}) }}

profiles_attached as (

    select
        int_users_joined_to_cutoffs.user_id,
        int_users_joined_to_cutoffs.cutoff_date,
        date_diff(
            'day', stg_raw__users.signed_up_at::date, int_users_joined_to_cutoffs.cutoff_date
        ) as days_since_signup
    from int_users_joined_to_cutoffs
    -- null without a users table, and for a sign-up on or after the cutoff (unknown then)
    left join stg_raw__users
        on
            int_users_joined_to_cutoffs.user_id = stg_raw__users.user_id
            and stg_raw__users.signed_up_at
            < int_users_joined_to_cutoffs.cutoff_date::timestamp
    where
        int_users_joined_to_cutoffs.cutoff_date in (
            select cutoffs_to_build.cutoff_date from cutoffs_to_build
        )

),

fingerprint_attached as (

    {{ attach_built_from('profiles_attached') }}

)

select * from fingerprint_attached
