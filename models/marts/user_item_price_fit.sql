{#-
    One row per user and item among the var('item_fit_top_n') items of the optional
    items table that best fit the user: items of the categories of the user's price
    bands, ranked by price fit (1 inside the band, falling with the distance outside
    it) times the category's share of the user's spend. Empty without an items table.
-#}
with

user_price_bands as (

    select
        user_id,
        as_of,
        category,
        category_spend_share,
        band_lower_price,
        band_median_price,
        band_upper_price
    from {{ ref('user_price_bands') }}
    where not is_overall

),

stg_raw__items as (

    select
        item_id,
        category,
        list_price
    from {{ ref('stg_raw__items') }}
    where item_id is not null and category is not null and list_price > 0

),

items_deduplicated as (

    select
        item_id,
        any_value(category order by category) as category,
        any_value(list_price order by list_price) as list_price
    from stg_raw__items
    group by item_id

),

items_fitted as (

    select
        user_price_bands.user_id,
        user_price_bands.as_of,
        items_deduplicated.item_id,
        items_deduplicated.category,
        items_deduplicated.list_price,
        user_price_bands.band_lower_price,
        user_price_bands.band_upper_price,
        -- 1 inside the band; band edge over price above it, price over edge below it
        least(items_deduplicated.list_price, user_price_bands.band_upper_price)
        / greatest(items_deduplicated.list_price, user_price_bands.band_lower_price)
            as price_fit,
        user_price_bands.category_spend_share as category_affinity,
        abs(ln(items_deduplicated.list_price / user_price_bands.band_median_price))
            as log_distance_to_median
    from user_price_bands
    inner join items_deduplicated
        on user_price_bands.category = items_deduplicated.category

),

items_ranked as (

    select
        user_id,
        as_of,
        item_id,
        category,
        list_price,
        band_lower_price,
        band_upper_price,
        price_fit,
        category_affinity,
        price_fit * category_affinity as fit_score,
        cast(row_number() over (
            partition by user_id
            order by price_fit * category_affinity desc, log_distance_to_median asc, item_id asc
        ) as integer) as item_rank
    from items_fitted
    qualify item_rank <= {{ var('item_fit_top_n') | int }}

)

select * from items_ranked
