with

source as (

    select * from {{ read_raw_table('events') }}

),

renamed as (

    select
        nullif(trim(cast(event_id as varchar)), '') as event_id,
        nullif(trim(cast(user_id as varchar)), '') as user_id,
        cast(try_cast(event_time as timestamptz) as timestamp) as event_at,
        lower(nullif(trim(cast(event_type as varchar)), '')) as raw_event_type,
        nullif(trim(cast(item_id as varchar)), '') as item_id,
        nullif(trim(cast(category as varchar)), '') as category,
        try_cast(price as double) as price,
        try_cast(quantity as integer) as quantity,
        try_cast(amount as double) as amount,
        nullif(trim(cast(order_id as varchar)), '') as order_id,
        nullif(trim(cast(session_id as varchar)), '') as session_id,
        try_cast(rating as integer) as rating,
        cast(review_text as varchar) as review_text,
        lower(nullif(trim(cast(channel as varchar)), '')) as channel,
        source_file,
        event_time is not null and try_cast(event_time as timestamptz) is null
            as has_unparseable_event_time,
        (price is not null and try_cast(price as double) is null)
        or (amount is not null and try_cast(amount as double) is null)
        or (quantity is not null and try_cast(quantity as integer) is null)
        or (rating is not null and try_cast(rating as integer) is null)
            as has_unparseable_number,
        -- the row as it arrived where a value did not cast (the typed columns keep
        -- the rest faithfully); built only for those rows
        case
            when
                (event_time is not null and try_cast(event_time as timestamptz) is null)
                or (price is not null and try_cast(price as double) is null)
                or (amount is not null and try_cast(amount as double) is null)
                or (quantity is not null and try_cast(quantity as integer) is null)
                or (rating is not null and try_cast(rating as integer) is null)
                then {{ raw_values_json('events') }}
        end as unparseable_raw_values

    from source

)

select * from renamed
