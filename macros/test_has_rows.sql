{#- Fails when the model is empty: a step that silently produced nothing. -#}
{% test has_rows(model) %}
    select 'no rows' as failure
    where not exists (select 1 from {{ model }})
{% endtest %}
