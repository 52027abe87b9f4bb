{#-
    The distinct `keys` (a column, or columns joined by commas) of the `source` rows
    written by a dbt run that no row of the incremental model being built carries in
    its `run_column`: what changed since the model last ran. Runs are told apart by
    value, not by order, so the clock cannot hide one; a full refresh of `source`
    gives every row a new run, and the model then rebuilds everything.
-#}
{% macro keys_from_unseen_runs(source, run_column, keys, where='true') %}
    select distinct {{ keys }}
    from {{ source }}
    where
        {{ where }}
        and {{ run_column }} not in (select distinct {{ run_column }} from {{ this }})
{% endmacro %}
