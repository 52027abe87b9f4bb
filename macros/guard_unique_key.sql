{#-
    The in-model key guard of a model configured with guarded_key (dbt_project.yml):
    statements that run right after the model creates `relation`, in the same call, and
    fail the model where a key of the rows it holds occurs more than once, naming the
    model, the key and how many keys repeat. `relation` is what the model is about to
    write: on an incremental run the batch (the temporary table delete+insert reads, so
    the check costs the batch, never the table), on a first build the table itself and on
    --full-refresh its replacement, before either is committed or swapped in. The error
    rolls the model's transaction back: the table keeps its previous rows.

    After a delete+insert on the key, or on a column of it whose old rows all go (a
    day, a cutoff), a repeated key can only come from the batch; so a table whose every
    write passed the guard holds no repeated key. A table the guard checked whole (first
    build, --full-refresh) is marked so in its DuckDB comment (guarded_key_mark); the
    key tests read only the latest write's rows of a marked table (get_where_subquery).
-#}
{% macro guard_unique_key(relation, temporary) %}
    {%- set guard = config.get('meta', {}).get('guarded_key') -%}
    {%- set columns = guard['columns'] -%}
    select
        case
            when count(*) > 0
                then error(
                    '{{ model.name }}: ' || count(*) || ' key(s) ({{ columns | join(", ") }})'
                    || ' occur more than once in the rows it was about to write'
                    || ' (' || max(occurrences) || ' rows at most, e.g. ' || min(example)
                    || '); nothing was written'
                )
        end as repeated_keys
    from (
        select
            cast(struct_pack({{ columns | join(', ') }}) as varchar) as example,
            count(*) as occurrences
        from {{ relation }}
        where {{ guard.get('where') or 'true' }}
        group by {{ columns | join(', ') }}
        having count(*) > 1
    ) as repeated;
    {%- if not temporary %}
        comment on table {{ relation }} is '{{ guarded_key_mark() | replace("'", "''") }}';
    {%- endif %}
{% endmacro %}
