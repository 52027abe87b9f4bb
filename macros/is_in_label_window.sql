{#-
    True for an event in the label window of a score or cutoff: the half-open
    [start_date, start_date + horizon_days), at midnight UTC, so that features
    (events strictly before the cutoff) and labels (events from it on) never share
    an event. The one definition of the window; a window of the same length ending
    at the cutoff is is_in_label_window(event_at, start_date ~ ' - ' ~ horizon, horizon).
-#}
{% macro is_in_label_window(event_at, start_date, horizon_days) -%}
    (
        {{ event_at }} >= cast({{ start_date }} as timestamp)
        and {{ event_at }} < cast(({{ start_date }}) + to_days(cast({{ horizon_days }} as integer)) as timestamp)
    )
{%- endmacro %}
