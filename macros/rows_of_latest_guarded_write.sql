{#-
    The condition a key test on a guarded model (meta guarded_key, dbt_project.yml)
    narrows its rows with: those the latest run that wrote the table wrote, known by
    the guard's written_at column (when that run started; every row a run writes
    carries it). In a `dbt build` that wrote rows these are this run's; in a `dbt test`
    on its own, the last build's. Sound because every earlier write passed the key
    guard (guard_unique_key), which the table's mark says; a table without the mark
    (built before the guard, or by another key) is tested whole, and so is every
    table where var('key_tests_read_whole_tables') is true. A `where` with the
    placeholder on a model without the guard fails the test: it would pass on a table
    nobody checked.
-#}
{% macro rows_of_latest_guarded_write(relation) %}
    {%- if not execute -%}{{ return('true') }}{%- endif -%}
    {%- set tested = graph.nodes.get(model.get('attached_node') or '') -%}
    {%- set guard = (tested.config.meta or {}).get('guarded_key') if tested else none -%}
    {%- if not guard or not guard.get('written_at') -%}
        {{ exceptions.raise_compiler_error(
            model.name ~ " narrows its rows to __latest_guarded_write__, but "
            ~ (tested.name if tested else relation) ~ " has no meta guarded_key with"
            ~ " written_at: only a model whose every write is checked for repeated keys"
            ~ " may test its latest write alone"
        ) }}
    {%- endif -%}
    {%- if var('key_tests_read_whole_tables') -%}{{ return('true') }}{%- endif -%}
    {%- set marked = run_query(
        "select comment from duckdb_tables() where database_name = '" ~ relation.database
        ~ "' and schema_name = '" ~ relation.schema
        ~ "' and table_name = '" ~ relation.identifier ~ "'"
    ) -%}
    {%- if marked.rows | length == 0 or marked.rows[0][0] != guarded_key_mark(guard) -%}
        {{ log(relation.identifier ~ " was not built whole under its key guard: " ~ model.name
            ~ " reads every row (a --full-refresh marks it)", info=true) }}
        {{ return('true') }}
    {%- endif -%}
    {%- set latest = run_query(
        "select cast(max(" ~ guard['written_at'] ~ ") as varchar) from " ~ relation
    ).rows[0][0] -%}
    {%- if latest is none -%}{{ return('true') }}{%- endif -%}
    {{ return(guard['written_at'] ~ " = timestamp '" ~ latest ~ "'") }}
{% endmacro %}
