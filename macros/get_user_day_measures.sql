{#-
    The additive measures of int_events_aggregated_to_user_days: the ones that
    point-in-time windows are built from by differencing running totals. Add a
    measure here after adding it to the user-day base, and it is available in
    int_user_activity_windowed for every window.
-#}
{% macro get_user_day_measures() %}
    {{ return([
        'count_events',
        'count_views',
        'count_clicks',
        'count_searches',
        'count_cart_adds',
        'count_cart_removals',
        'count_purchase_lines',
        'count_purchase_days',
        'sum_purchase_quantity',
        'sum_purchase_amount',
        'count_orders',
        'count_refunds',
        'sum_refund_amount',
        'count_reviews',
        'count_ratings',
        'sum_review_rating',
        'count_low_ratings',
        'sum_review_sentiment',
        'count_priced_purchase_lines',
        'sum_relative_unit_price',
        'count_lines_above_category_median',
        'count_premium_category_lines',
        'count_weekend_events',
        'count_evening_events',
        'count_sessions',
        'sum_session_minutes',
        'count_active_days',
    ]) }}
{% endmacro %}
