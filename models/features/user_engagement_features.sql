{#-
    Browsing, searching, carts, sessions and the funnel between them, and when
    in the week and day the user is active: one row per user_id and cutoff_date.
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
        {% for window_days in [7, 30, 90] -%}
            max(count_views) filter (where window_days = {{ window_days }})
                as count_views_{{ window_days }}d,
            max(count_cart_adds) filter (where window_days = {{ window_days }})
                as count_cart_adds_{{ window_days }}d,
            max(count_sessions) filter (where window_days = {{ window_days }})
                as count_sessions_{{ window_days }}d,
        {% endfor -%}
        max(count_events) filter (where window_days = 30) as count_events_30d,
        max(count_clicks) filter (where window_days = 30) as count_clicks_30d,
        max(count_searches) filter (where window_days = 30) as count_searches_30d,
        max(count_sessions) filter (where window_days is null) as count_sessions_lifetime,
        max(count_active_days) filter (where window_days = 90) as count_active_days_90d,
        max(count_cart_adds) filter (where window_days = 90)
        / nullif(max(count_views) filter (where window_days = 90), 0)
            as ratio_cart_adds_to_views_90d,
        max(count_purchase_lines) filter (where window_days = 90)
        / nullif(max(count_cart_adds) filter (where window_days = 90), 0)
            as ratio_purchase_lines_to_cart_adds_90d,
        max(sum_session_minutes) filter (where window_days = 90)
        / nullif(max(count_sessions) filter (where window_days = 90), 0)
            as avg_session_minutes_90d,
        -- a purchase may skip the cart, so the share is floored at zero
        case
            when max(count_cart_adds) filter (where window_days = 90) > 0
                then greatest(
                    1 - max(count_purchase_lines) filter (where window_days = 90)
                    / max(count_cart_adds) filter (where window_days = 90),
                    0
                )
        end as share_cart_adds_abandoned_90d,
        max(count_weekend_events) filter (where window_days = 90)
        / nullif(max(count_events) filter (where window_days = 90), 0)
            as share_weekend_events_90d,
        max(count_evening_events) filter (where window_days = 90)
        / nullif(max(count_events) filter (where window_days = 90), 0)
            as share_evening_events_90d
    from int_user_activity_windowed
    where cutoff_date in (select cutoffs_to_build.cutoff_date from cutoffs_to_build)
    group by user_id, cutoff_date

),

fingerprint_attached as (

    {{ attach_built_from('windows_pivoted') }}

)

select * from fingerprint_attached
