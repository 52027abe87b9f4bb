{#-
    One row per user and category the user bought in (at least
    var('price_band_min_purchases') priced purchase lines in the
    var('price_band_lookback_days') days before as_of), plus one overall row per user
    (category null): the range of unit prices the user pays, shrunk towards the
    category's range (the shop's, for the overall row) by
    var('price_band_shrinkage_purchases') pseudo-lines, and a willingness-to-pay index
    against the category. Only purchases strictly before as_of count.
-#}
{%- set lower_quantile = var('price_band_lower_quantile') | float -%}
{%- set upper_quantile = var('price_band_upper_quantile') | float -%}
{%- set shrinkage = var('price_band_shrinkage_purchases') | float -%}

with

int_events_validated as (

    select
        user_id,
        event_date,
        category,
        price,
        amount
    from {{ ref('int_events_validated') }}
    where
        is_clean
        and event_type = 'purchase'
        and category is not null
        and price > 0

),

int_cutoffs_derived as (

    select as_of_date
    from {{ ref('int_cutoffs_derived') }}
    where is_scoring_cutoff

),

purchase_lines_windowed as (

    select
        int_events_validated.user_id,
        int_events_validated.category,
        int_events_validated.price,
        int_events_validated.amount,
        int_cutoffs_derived.as_of_date as as_of
    from int_events_validated
    inner join int_cutoffs_derived
        on
            int_events_validated.event_date < int_cutoffs_derived.as_of_date
            and int_events_validated.event_date >= cast(
                int_cutoffs_derived.as_of_date
                - {{ var('price_band_lookback_days') | int }} as date
            )

),

category_bands_measured as (

    select
        category,
        quantile_cont(price, {{ lower_quantile }}) as reference_price_lower,
        median(price) as reference_price_median,
        quantile_cont(price, {{ upper_quantile }}) as reference_price_upper
    from purchase_lines_windowed
    group by category

),

shop_band_measured as (

    select
        quantile_cont(price, {{ lower_quantile }}) as reference_price_lower,
        median(price) as reference_price_median,
        quantile_cont(price, {{ upper_quantile }}) as reference_price_upper
    from purchase_lines_windowed

),

lines_related_to_category as (

    -- each line's price against its category's median: the overall row's price level
    select
        purchase_lines_windowed.*,
        purchase_lines_windowed.price
        / category_bands_measured.reference_price_median as relative_price
    from purchase_lines_windowed
    inner join category_bands_measured
        on purchase_lines_windowed.category = category_bands_measured.category

),

user_spend_totalled as (

    select
        user_id,
        {{ sum_exactly('amount') }} as user_spend
    from purchase_lines_windowed
    group by user_id

),

user_category_bands_measured as (

    select
        lines_related_to_category.user_id,
        lines_related_to_category.as_of,
        lines_related_to_category.category,
        count(*) as count_purchase_lines,
        {{ sum_exactly('lines_related_to_category.amount') }} as category_spend,
        quantile_cont(lines_related_to_category.price, {{ lower_quantile }})
            as paid_price_lower,
        median(lines_related_to_category.price) as paid_price_median,
        quantile_cont(lines_related_to_category.price, {{ upper_quantile }})
            as paid_price_upper,
        median(lines_related_to_category.relative_price) as paid_relative_price
    from lines_related_to_category
    group by
        lines_related_to_category.user_id,
        lines_related_to_category.as_of,
        lines_related_to_category.category
    having count(*) >= {{ var('price_band_min_purchases') | int }}

),

user_overall_bands_measured as (

    select
        user_id,
        as_of,
        count(*) as count_purchase_lines,
        {{ sum_exactly('amount') }} as category_spend,
        quantile_cont(price, {{ lower_quantile }}) as paid_price_lower,
        median(price) as paid_price_median,
        quantile_cont(price, {{ upper_quantile }}) as paid_price_upper,
        median(relative_price) as paid_relative_price
    from lines_related_to_category
    group by user_id, as_of

),

bands_referenced as (

    select
        user_category_bands_measured.*,
        false as is_overall,
        category_bands_measured.reference_price_lower,
        category_bands_measured.reference_price_median,
        category_bands_measured.reference_price_upper
    from user_category_bands_measured
    inner join category_bands_measured
        on user_category_bands_measured.category = category_bands_measured.category

    union all by name

    select
        user_overall_bands_measured.*,
        cast(null as varchar) as category,
        true as is_overall,
        shop_band_measured.reference_price_lower,
        shop_band_measured.reference_price_median,
        shop_band_measured.reference_price_upper
    from user_overall_bands_measured
    cross join shop_band_measured

),

bands_shrunk as (

    -- a user with n lines weighs n / (n + k) against k pseudo-lines of the reference band
    select
        bands_referenced.user_id,
        bands_referenced.as_of,
        bands_referenced.category,
        bands_referenced.is_overall,
        bands_referenced.count_purchase_lines,
        bands_referenced.category_spend / nullif(user_spend_totalled.user_spend, 0)
            as category_spend_share,
        bands_referenced.count_purchase_lines
        / (bands_referenced.count_purchase_lines + {{ shrinkage }}) as user_weight,
        bands_referenced.paid_price_lower,
        bands_referenced.paid_price_median,
        bands_referenced.paid_price_upper,
        bands_referenced.reference_price_lower,
        bands_referenced.reference_price_median,
        bands_referenced.reference_price_upper,
        bands_referenced.paid_relative_price
    from bands_referenced
    inner join user_spend_totalled
        on bands_referenced.user_id = user_spend_totalled.user_id

),

bands_blended as (

    select
        user_id,
        as_of,
        category,
        is_overall,
        count_purchase_lines,
        category_spend_share,
        user_weight,
        paid_price_lower,
        paid_price_median,
        paid_price_upper,
        reference_price_lower,
        reference_price_median,
        reference_price_upper,
        user_weight * paid_price_lower
        + (1 - user_weight) * reference_price_lower as band_lower_price,
        user_weight * paid_price_median
        + (1 - user_weight) * reference_price_median as band_median_price,
        user_weight * paid_price_upper
        + (1 - user_weight) * reference_price_upper as band_upper_price,
        -- 100 pays the category's median; the overall row averages the user's lines
        -- each against its own category's median
        100 * (user_weight * paid_relative_price + (1 - user_weight))
            as willingness_to_pay_index
    from bands_shrunk

)

select * from bands_blended
