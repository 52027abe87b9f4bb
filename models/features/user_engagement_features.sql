{#- Browsing, carts and sessions: one row per user_id and cutoff_date. -#}
with

int_user_activity_windowed as (

    select
        user_id,
        cutoff_date,
        window_days,
        count_events,
        count_views,
        count_clicks,
        count_searches,
        count_cart_adds,
        count_cart_removals,
        count_purchase_lines,
        count_sessions,
        sum_session_minutes,
        count_active_days
    from {{ ref('int_user_activity_windowed') }}

),

windows_pivoted as (

    select
        user_id,
        cutoff_date,
        {% for window_days in [7, 30, 90] -%}
            max(count_views) filter (where window_days = {{ window_days }})
                as count_views_{{ window_days }}d,
            max(count_cart_adds) filter (where window_days = {{ window_days }})
                as count_cart_adds_{{ window_days }}d,
            max(count_sessions) filter (where window_days = {{ window_days }})
                as count_sessions_{{ window_days }}d,
        {% endfor -%}
        max(count_events) filter (where window_days = 30) as count_events_30d,
        max(count_active_days) filter (where window_days = 90) as count_active_days_90d,
        max(count_cart_adds) filter (where window_days = 90)
        / nullif(max(count_views) filter (where window_days = 90), 0)
            as ratio_cart_adds_to_views_90d,
        max(count_purchase_lines) filter (where window_days = 90)
        / nullif(max(count_cart_adds) filter (where window_days = 90), 0)
            as ratio_purchase_lines_to_cart_adds_90d,
        max(sum_session_minutes) filter (where window_days = 90)
        / nullif(max(count_sessions) filter (where window_days = 90), 0)
            as avg_session_minutes_90d
    from int_user_activity_windowed
    group by user_id, cutoff_date

)

select * from windows_pivoted
