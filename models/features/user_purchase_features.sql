{#-
    Recency, frequency and monetary value, spend trend and purchase rhythm: one
    row per user_id and cutoff_date.
-#}
with

int_user_activity_windowed as (

    select * from {{ ref('int_user_activity_windowed') }}

),

-- incremental: a cutoff is built again when its windows were (macros/select_cutoffs_to_build.sql)
{{ select_cutoffs_to_build(at_cutoff={'int_user_activity_windowed': 'cutoff_built_at'}) }}

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
            as ratio_refund_to_purchase_amount_lifetime,
        -- the last 30 days against the 30 before them
        max(sum_purchase_amount) filter (where window_days = 30)
        / nullif(
            max(sum_purchase_amount) filter (where window_days = 60)
            - max(sum_purchase_amount) filter (where window_days = 30),
            0
        )
            as ratio_spend_30d_to_previous_30d,
        max(sum_purchase_gap_days) filter (where window_days is null)
        / nullif(max(count_purchase_gaps) filter (where window_days is null), 0)
            as avg_days_between_purchases_lifetime,
        -- greatest() skips nulls, so the case keeps users without gaps null
        case
            when max(count_purchase_gaps) filter (where window_days is null) > 0
                then sqrt(greatest(
                    max(sum_squared_purchase_gap_days) filter (where window_days is null)
                    / max(count_purchase_gaps) filter (where window_days is null)
                    - pow(
                        max(sum_purchase_gap_days) filter (where window_days is null)
                        / max(count_purchase_gaps) filter (where window_days is null),
                        2
                    ),
                    0
                ))
        end as std_days_between_purchases_lifetime
    from int_user_activity_windowed
    where cutoff_date in (select cutoffs_to_build.cutoff_date from cutoffs_to_build)
    group by user_id, cutoff_date

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
    from windows_pivoted

),

fingerprint_attached as (

    {{ attach_built_from('relative_to_own_history_added') }}

)

select * from fingerprint_attached
