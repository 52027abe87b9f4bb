{#-
    One row per category and month: the category's reference unit price, the
    median paid unit price of its purchase lines in the
    var('category_price_lookback_days') days before the month starts, and whether
    the category is premium (reference price in the top third of that month's
    categories). Only purchases before the month count, so a purchase compared
    with its month's reference never sees its own or later prices.
-#}
with

int_events_validated as (

    select
        category,
        event_date,
        price
    from {{ ref('int_events_validated') }}
    where
        is_clean
        and event_type = 'purchase'
        and category is not null
        and price > 0

),

months_listed as (

    select distinct cast(date_trunc('month', event_date) as date) as month_start_date
    from int_events_validated

),

categories_listed as (

    select distinct category
    from int_events_validated

),

category_months_listed as (

    -- every category in every month with purchases, so that whether a category
    -- counts in a month depends on earlier months only (it needs reference purchases)
    select
        categories_listed.category,
        months_listed.month_start_date
    from categories_listed
    cross join months_listed

),

reference_prices_measured as (

    select
        category_months_listed.category,
        category_months_listed.month_start_date,
        median(int_events_validated.price) as reference_unit_price,
        count(*) as count_reference_lines
    from category_months_listed
    inner join int_events_validated
        on
            category_months_listed.category = int_events_validated.category
            and category_months_listed.month_start_date > int_events_validated.event_date
            and int_events_validated.event_date >= cast(
                category_months_listed.month_start_date
                - {{ var('category_price_lookback_days') | int }} as date
            )
    group by category_months_listed.category, category_months_listed.month_start_date

),

premium_flagged as (

    select
        category,
        month_start_date,
        reference_unit_price,
        count_reference_lines,
        ntile(3) over (
            partition by month_start_date
            order by reference_unit_price, category
        ) = 3 as is_premium_category
    from reference_prices_measured

)

select * from premium_flagged
