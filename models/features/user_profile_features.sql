{#-
    Profile attributes from the optional users table (absent table: nulls). One
    row per user_id and cutoff_date. A sign-up on or after the cutoff is unknown
    at the cutoff and reads as null.
-#}
with

int_users_joined_to_cutoffs as (

    select
        user_id,
        cutoff_date
    from {{ ref('int_users_joined_to_cutoffs') }}

),

stg_raw__users as (

    select
        user_id,
        min(signed_up_at) as signed_up_at
    from {{ ref('stg_raw__users') }}
    where user_id is not null
    group by user_id

),

profiles_attached as (

    select
        int_users_joined_to_cutoffs.user_id,
        int_users_joined_to_cutoffs.cutoff_date,
        case
            when
                stg_raw__users.signed_up_at
                < cast(int_users_joined_to_cutoffs.cutoff_date as timestamp)
                then date_diff(
                    'day',
                    cast(stg_raw__users.signed_up_at as date),
                    int_users_joined_to_cutoffs.cutoff_date
                )
        end as days_since_signup
    from int_users_joined_to_cutoffs
    left join stg_raw__users
        on int_users_joined_to_cutoffs.user_id = stg_raw__users.user_id

)

select * from profiles_attached
