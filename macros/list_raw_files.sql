{#-
    A subquery listing the files of one raw table with each file's size and
    modification time (from the file system; no file is read), one row per file.
    Empty when the table is absent. An incremental model compares it with the files
    it was built from to tell new files from changed or removed ones.
-#}
{% macro list_raw_files(table_name) %}
    {%- set location = find_raw_files(table_name) if execute else none -%}
    {%- if location is none -%}
        {{ return(
            "(select null::varchar as source_file, null::bigint as source_file_bytes,"
            ~ " null::timestamptz as source_file_modified_at where false)"
        ) }}
    {%- endif -%}
    {%- set file_list = "[" ~ sql_string_list(location['files']) ~ "]" -%}
    (
        select
            filename as source_file,
            size as source_file_bytes,
            last_modified as source_file_modified_at
        from read_blob({{ file_list }})
    )
{% endmacro %}
