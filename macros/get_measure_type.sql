{#-
    The SQL type a user-day measure is exposed as: counts (count_*, and the integer
    purchase-gap day sums) are bigint, everything else double. Running totals of the
    doubles are kept as DECIMAL so that a window sum (the difference of two running
    totals) is exact: zero when nothing happened, and the same whatever else the
    user did later.
-#}
{% macro get_measure_type(measure) %}
    {{ return('bigint' if measure.startswith('count_') or 'gap_days' in measure else 'double') }}
{% endmacro %}
