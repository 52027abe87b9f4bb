{#-
    On an incremental run, fails naming the model and `--full-refresh` where the built
    table lacks one of `columns`: an earlier version of the model built it, and a
    rerun cannot add what it keeps in them for the rows already there. Does nothing
    on a full build, and in a unit test (whose `this` is a fixture, not a table).
-#}
{% macro require_built_columns(columns) %}
    {%- if is_incremental() and execute and this is not string -%}
        {%- set built = load_relation(this) -%}
        {%- if built is not none -%}
            {%- set names = adapter.get_columns_in_relation(built) | map(attribute='name')
                | map('lower') | list -%}
            {%- set missing = columns | reject('in', names) | list -%}
            {%- if missing -%}
                {{ exceptions.raise_compiler_error(
                    this ~ " was built without " ~ missing | join(', ')
                    ~ " by an earlier version of " ~ model.name ~ ": rebuild it once with"
                    ~ " `dbt build --full-refresh --select " ~ model.name ~ "+`"
                ) }}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
