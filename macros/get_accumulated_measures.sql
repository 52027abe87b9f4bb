{#-
    The measures int_user_days_accumulated keeps running totals of: every additive
    user-day measure plus the purchase-gap sums it derives (days between
    consecutive purchase days, their squares and count), so that window sums of
    all of them come from int_user_activity_windowed.
-#}
{% macro get_accumulated_measures() %}
    {{ return(get_user_day_measures() + [
        'count_purchase_gaps',
        'sum_purchase_gap_days',
        'sum_squared_purchase_gap_days',
    ]) }}
{% endmacro %}
