{#-
    For an incremental model built from raw files: the files listed now (a relation
    like stg_raw__event_files) that the built model has not seen, as a list of paths.
    The model's rows name their file (source_file, source_file_bytes,
    source_file_modified_at) and, where copies of a row from other files were
    collapsed into it, those files too (other_source_files: a file of copies only has
    no row of its own). A file it was built from that is gone, or whose size or
    modification time changed, fails the build naming the file: the rows it gave are
    in the model, and only `dbt build --full-refresh` can take them out again.
-#}
{% macro find_new_raw_files(built, listing) %}
    {%- set compared = run_query(
        "with files as (select source_file, source_file_bytes, source_file_modified_at"
        ~ " from " ~ built ~ " where source_file is not null"
        ~ " union all select unnest(other_source_files, recursive := true) from " ~ built
        ~ " where other_source_files is not null),"
        ~ " built as (select source_file, min(source_file_bytes) as bytes,"
        ~ " min(source_file_modified_at) as modified_at from files group by source_file),"
        ~ " listed as (select source_file, source_file_bytes as bytes,"
        ~ " source_file_modified_at as modified_at from " ~ listing ~ ")"
        ~ " select coalesce(listed.source_file, built.source_file) as source_file,"
        ~ " case when built.source_file is null then 'new'"
        ~ " when listed.source_file is null then 'removed' else 'changed' end as status"
        ~ " from built full join listed on built.source_file = listed.source_file"
        ~ " where built.source_file is null or listed.source_file is null"
        ~ " or built.bytes is distinct from listed.bytes"
        ~ " or built.modified_at is distinct from listed.modified_at"
        ~ " order by status, source_file"
    ) -%}
    {%- set new_files = [] -%}
    {%- set stale = [] -%}
    {%- for row in compared.rows -%}
        {%- if row[1] == 'new' -%}
            {%- do new_files.append(row[0]) -%}
        {%- else -%}
            {%- do stale.append(row[0] ~ ' (' ~ row[1] ~ ')') -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if stale -%}
        {{ exceptions.raise_compiler_error(
            built ~ " was built from raw files that are gone or changed since: "
            ~ (stale[:5] | join(', ')) ~ (' and ' ~ (stale | length - 5) ~ ' more' if stale | length > 5 else '')
            ~ ". New files are added incrementally, but a changed or removed file needs"
            ~ " `dbt build --full-refresh`."
        ) }}
    {%- endif -%}
    {{ return(new_files) }}
{% endmacro %}
