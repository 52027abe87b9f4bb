{#-
    Recency, frequency and monetary value, spend trend and purchase rhythm: one
    row per user_id and cutoff_date.
-#}
with

cutoffs_fingerprinted as materialized (

    -- one row per cutoff: the run that built its windows (macros/cutoffs_to_build.sql)
    {{ fingerprint_cutoffs(ref('int_user_activity_windowed'), 'cutoff_built_at') }}

),

cutoffs_to_build as materialized (

    {{ cutoffs_to_build('cutoffs_fingerprinted') }}

),

int_user_activity_windowed as not materialized (

    -- read afresh by the pivot and by the lifetime gaps, each taking only its rows
    -- and columns: a shared copy of every window cost 5.8 s against 4.5 s at the large
    -- bench scale (bench/README.md)
    select
        user_id,
        cutoff_date,
        window_days,
        count_orders,
        count_purchase_lines,
        count_purchase_days,
        sum_purchase_amount,
        count_refunds,
        sum_refund_amount,
        last_activity_date,
        first_activity_date,
        first_purchase_date,
        last_purchase_date,
        max_order_amount,
        count_purchase_gaps,
        sum_purchase_gap_days,
        sum_squared_purchase_gap_days
    from {{ ref('int_user_activity_windowed') }}
    where cutoff_date in (select cutoffs_to_build.cutoff_date from cutoffs_to_build)

),

windows_pivoted as (

    select
        user_id,
        cutoff_date,
        date_diff('day', any_value(last_purchase_date), cutoff_date) as days_since_last_purchase,
        date_diff('day', any_value(last_activity_date), cutoff_date) as days_since_last_event,
        date_diff('day', any_value(first_activity_date), cutoff_date) as days_since_first_event,
        date_diff('day', any_value(first_purchase_date), cutoff_date) as days_since_first_purchase,
        {% for window_days in [7, 30, 90, 365] -%}
            max(count_orders) filter (where window_days = {{ window_days }})
                as count_orders_{{ window_days }}d,
        {% endfor -%}
        max(count_orders) filter (where window_days is null) as count_orders_lifetime,
        {% for window_days in [30, 60, 90, 365] -%}
            max(sum_purchase_amount) filter (where window_days = {{ window_days }})
                as sum_purchase_amount_{{ window_days }}d,
        {% endfor -%}
        max(sum_purchase_amount) filter (where window_days is null)
            as sum_purchase_amount_lifetime,
        max(sum_refund_amount) filter (where window_days = 90) as sum_refund_amount_90d,
        max(sum_refund_amount) filter (where window_days is null) as sum_refund_amount_lifetime,
        max(count_purchase_lines) filter (where window_days is null)
            as count_purchase_lines_lifetime,
        max(count_purchase_days) filter (where window_days is null)
            as count_purchase_days_lifetime,
        max(sum_purchase_amount) filter (where window_days = 365)
        / nullif(max(count_orders) filter (where window_days = 365), 0)
            as avg_order_amount_365d,
        max(sum_purchase_amount) filter (where window_days is null)
        / nullif(max(count_orders) filter (where window_days is null), 0)
            as avg_order_amount_lifetime,
        any_value(max_order_amount) as max_order_amount_lifetime,
        max(sum_refund_amount) filter (where window_days is null)
        / nullif(max(sum_purchase_amount) filter (where window_days is null), 0)
            as ratio_refund_to_purchase_amount_lifetime
    from int_user_activity_windowed
    group by user_id, cutoff_date

),

trend_and_rhythm_added as (

    select
        windows_pivoted.*,
        windows_pivoted.sum_purchase_amount_30d
        / nullif(
            windows_pivoted.sum_purchase_amount_60d - windows_pivoted.sum_purchase_amount_30d, 0
        )
            as ratio_spend_30d_to_previous_30d,
        gaps.sum_purchase_gap_days / nullif(gaps.count_purchase_gaps, 0)
            as avg_days_between_purchases_lifetime,
        -- greatest() skips nulls, so the case keeps users without gaps null
        case
            when gaps.count_purchase_gaps > 0
                then sqrt(greatest(
                    gaps.sum_squared_purchase_gap_days / gaps.count_purchase_gaps
                    - pow(gaps.sum_purchase_gap_days / gaps.count_purchase_gaps, 2),
                    0
                ))
        end as std_days_between_purchases_lifetime
    from windows_pivoted
    inner join int_user_activity_windowed as gaps
        on
            windows_pivoted.user_id = gaps.user_id
            and windows_pivoted.cutoff_date = gaps.cutoff_date
            and gaps.window_days is null

),

relative_to_own_history_added as (

    -- recency and frequency measured against the user's own history: the absolute
    -- tenure grows past anything the training cutoffs saw (a shop whose customers all
    -- came in one quarter), where trees extrapolate flat; these ratios keep their range
    select
        *,
        days_since_last_purchase / nullif(days_since_first_purchase, 0)
            as ratio_recency_to_purchase_tenure,
        days_since_last_purchase / nullif(avg_days_between_purchases_lifetime, 0)
            as ratio_recency_to_avg_days_between_purchases,
        30.0 * count_purchase_days_lifetime / greatest(days_since_first_purchase, 30)
            as rate_purchase_days_per_30d_lifetime,
        30.0 * sum_purchase_amount_lifetime / greatest(days_since_first_purchase, 30)
            as rate_purchase_amount_per_30d_lifetime
    from trend_and_rhythm_added

),

fingerprint_attached as (

    {{ attach_built_from('relative_to_own_history_added') }}

)

select * from fingerprint_attached
