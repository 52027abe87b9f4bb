{#-
    An event's contribution to net spend: a purchase's amount, minus a refund's,
    0 for every other event type. Net spend over a window is the sum of it over the
    clean events in the window, floored at 0.
-#}
{% macro get_net_amount(event_type, amount) -%}
    case
        when {{ event_type }} = 'purchase' then {{ amount }}
        when {{ event_type }} = 'refund' then -{{ amount }}
        else 0
    end
{%- endmacro %}
