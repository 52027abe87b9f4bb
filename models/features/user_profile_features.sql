{#-
    Profile attributes from the optional users table (absent table: nulls). One
    row per user_id and cutoff_date. A sign-up on or after the cutoff is unknown
    at the cutoff and reads as null.

    Incremental by cutoff (macros/cutoffs_to_build.sql): a cutoff's built_from
    hashes its users and the users table's sign-ups, so a changed users table
    rebuilds every cutoff and a user new at a cutoff rebuilds that one.
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

users_fingerprinted as materialized (

    select coalesce(sum(hash(user_id, signed_up_at)), 0) as users_hash
    from stg_raw__users

),

cutoffs_fingerprinted as materialized (

    select
        cutoff_date,
        {{ built_from(
            'sum(hash(user_id)), (select users_hash from users_fingerprinted)'
        ) }} as built_from
    from int_users_joined_to_cutoffs
    group by cutoff_date

),

cutoffs_to_build as materialized (

    {{ cutoffs_to_build('cutoffs_fingerprinted') }}

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
        end as days_since_signup,
        cutoffs_fingerprinted.built_from
    from int_users_joined_to_cutoffs
    inner join cutoffs_fingerprinted
        on int_users_joined_to_cutoffs.cutoff_date = cutoffs_fingerprinted.cutoff_date
    left join stg_raw__users
        on int_users_joined_to_cutoffs.user_id = stg_raw__users.user_id
    where
        int_users_joined_to_cutoffs.cutoff_date in (
            select cutoffs_to_build.cutoff_date from cutoffs_to_build
        )

)

select * from profiles_attached
