{#- Window lengths in days for point-in-time features; lifetime is window_days null. -#}
{% macro get_feature_windows() %}
    {{ return([7, 30, 60, 90, 365]) }}
{% endmacro %}
