{#-
    What the user is willing to pay: paid unit prices against the category's
    reference price of the month (from earlier purchases only), and premium
    categories. One row per user_id and cutoff_date.
-#}
with

int_user_activity_windowed as (

    select * from {{ ref('int_user_activity_windowed') }}
    where window_days = 365 or window_days is null

),

-- incremental: a cutoff is built again when its windows were (macros/select_cutoffs_to_build.sql)
{{ select_cutoffs_to_build(at_cutoff={'int_user_activity_windowed': 'cutoff_built_at'}) }}

windows_pivoted as (

    select
        user_id,
        cutoff_date,
        max(sum_relative_unit_price) filter (where window_days = 365)
        / nullif(max(count_priced_purchase_lines) filter (where window_days = 365), 0)
            as ratio_unit_price_to_category_median_365d,
        max(sum_relative_unit_price) filter (where window_days is null)
        / nullif(max(count_priced_purchase_lines) filter (where window_days is null), 0)
            as ratio_unit_price_to_category_median_lifetime,
        max(count_lines_above_category_median) filter (where window_days = 365)
        / nullif(max(count_priced_purchase_lines) filter (where window_days = 365), 0)
            as share_lines_above_category_median_365d,
        max(count_premium_category_lines) filter (where window_days = 365)
        / nullif(max(count_priced_purchase_lines) filter (where window_days = 365), 0)
            as share_premium_category_lines_365d,
        max(sum_purchase_amount) filter (where window_days = 365)
        / nullif(max(sum_purchase_quantity) filter (where window_days = 365), 0)
            as avg_paid_unit_price_365d
    from int_user_activity_windowed
    where cutoff_date in (select cutoffs_to_build.cutoff_date from cutoffs_to_build)
    group by user_id, cutoff_date

),

fingerprint_attached as (

    {{ attach_built_from('windows_pivoted') }}

)

select * from fingerprint_attached
