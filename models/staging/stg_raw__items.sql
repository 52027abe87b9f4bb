with

source as (

    select * from {{ read_raw_table('items') }}

),

renamed as (

    select
        nullif(trim(cast(item_id as varchar)), '') as item_id,
        nullif(trim(cast(category as varchar)), '') as category,
        try_cast(list_price as double) as list_price,
        nullif(trim(cast(brand as varchar)), '') as brand

    from source

)

select * from renamed
