with

source as (

    select * from {{ read_raw_table('users') }}

),

renamed as (

    select
        nullif(trim(cast(user_id as varchar)), '') as user_id,
        {{ parse_timestamp('signed_up_at') }} as signed_up_at,
        lower(nullif(trim(cast(region as varchar)), '')) as region

    from source

)

select * from renamed
