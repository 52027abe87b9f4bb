{#- Recency, frequency and monetary value: one row per user_id and cutoff_date. -#}
with

int_user_activity_windowed as (

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
        max_order_amount
    from {{ ref('int_user_activity_windowed') }}

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
        {% for window_days in [30, 90, 365] -%}
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

)

select * from windows_pivoted
