{#-
    Fails on each row of monitoring_alerts at level alert whose check is one of
    `checks`: a monitoring alert shown by dbt (these tests run with severity warn).
-#}
{% test no_alerts(model, checks) %}
    select
        check_name,
        subject,
        model_version,
        observed_on,
        since_date,
        observed_value,
        alert_threshold,
        excess
    from {{ model }}
    where alert_level = 'alert' and check_name in ({{ sql_string_list(checks) }})
{% endtest %}
