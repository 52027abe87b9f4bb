{#-
    One row per user and item among the var('item_fit_top_n') items of the optional
    items table that best fit the user: items of the categories of the user's price
    bands, ranked by price fit (1 inside the band, falling with the distance outside
    it) times the category's share of the user's spend. Empty without an items table.

    Only items near each band's median price are scored. Within a category, items
    sorted by price, a band's best n form a run of neighbours around its median (all
    inside the band, nearest the median; or the whole band and its nearest items
    outside), so they lie within n places of the median's place: each band reads the
    items from n places below the median's to n places above (and every item of the
    lowest price read, where items share it: bands_windows), not the whole category.
    At the large bench's 156,250 items the full pairing (625,000 users x their
    categories x some 4,900 items each) ran out of a 5 GB memory limit.
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

items_placed as (

    select
        item_id,
        category,
        list_price,
        cast(row_number() over (
            partition by category order by list_price, item_id
        ) as integer) as price_place
    from items_deduplicated

),

price_places as (

    -- the places each price of a category spans (several where items share it)
    select
        category,
        list_price,
        min(price_place) as first_place,
        max(price_place) as last_place
    from items_placed
    group by category, list_price

),

bands_placed as (

    -- the place of the last item priced at or below the band's median (0: none)
    select
        user_price_bands.*,
        coalesce(price_places.last_place, 0) as median_place
    from user_price_bands
    asof left join price_places
        on
            user_price_bands.category = price_places.category
            and user_price_bands.band_median_price >= price_places.list_price

),

bands_windows as (

    -- the places from n below the median's to n above it (places past the category's
    -- last item match no item). Above the median the best items come in place order
    -- (price, then item_id: the ranking's order there); below it in descending price
    -- but ascending item_id within a price, so the lowest price read is read whole
    select
        bands_placed.*,
        lowest_price.first_place as window_first_place,
        bands_placed.median_place + {{ var('item_fit_top_n') | int }} as window_last_place
    from bands_placed
    inner join items_placed as lowest
        on
            bands_placed.category = lowest.category
            and lowest.price_place
            = greatest(1, bands_placed.median_place - {{ var('item_fit_top_n') | int }})
    inner join price_places as lowest_price
        on
            lowest.category = lowest_price.category
            and lowest.list_price = lowest_price.list_price

),

bands_places as (

    select
        * exclude (window_places),
        unnest(window_places) as price_place
    from (
        select
            *,
            range(window_first_place, window_last_place + 1) as window_places
        from bands_windows
    ) as bands_windows_listed

),

items_fitted as (

    select
        bands_places.user_id,
        bands_places.as_of,
        items_placed.item_id,
        items_placed.category,
        items_placed.list_price,
        bands_places.band_lower_price,
        bands_places.band_upper_price,
        -- 1 inside the band; band edge over price above it, price over edge below it
        least(items_placed.list_price, bands_places.band_upper_price)
        / greatest(items_placed.list_price, bands_places.band_lower_price)
            as price_fit,
        bands_places.category_spend_share as category_affinity,
        abs(ln(items_placed.list_price / bands_places.band_median_price))
            as log_distance_to_median
    from bands_places
    inner join items_placed
        on
            bands_places.category = items_placed.category
            and bands_places.price_place = items_placed.price_place

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
