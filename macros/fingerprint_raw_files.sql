{#-
    A subquery with one row per file in `files`: source_file, its size, modification
    time and source_file_hash, what the file is known by. A file up to
    var('raw_file_hash_max_bytes') is known by the md5 of its bytes, so a copy, a touch
    or a move keeps it the same file; a larger one by its size and modification time
    (hashing reads a file whole into memory, and DuckDB reads at most 3.9 GiB).
    Sizes are read at compile time (no file is read for them).
-#}
{% macro fingerprint_raw_files(files) %}
    {%- set empty = "(select null::varchar as source_file, null::bigint as source_file_bytes,"
        ~ " null::timestamptz as source_file_modified_at, null::varchar as source_file_hash"
        ~ " where false)" -%}
    {%- if not files or not execute -%}
        {{ return(empty) }}
    {%- endif -%}
    {%- set max_bytes = var('raw_file_hash_max_bytes') | int -%}
    {%- set file_list = "[" ~ sql_string_list(files) ~ "]" -%}
    {%- set sizes = run_query("select filename, size from read_blob(" ~ file_list ~ ")") -%}
    {%- set hashed = [] -%}
    {%- set by_time = [] -%}
    {%- for row in sizes.rows -%}
        {%- do (hashed if row[1] <= max_bytes else by_time).append(row[0]) -%}
    {%- endfor -%}
    {%- set parts = [] -%}
    {%- if hashed -%}
        {%- do parts.append(
            "select filename as source_file, size as source_file_bytes,"
            ~ " last_modified as source_file_modified_at, md5(content) as source_file_hash"
            ~ " from read_blob([" ~ sql_string_list(hashed) ~ "])"
        ) -%}
    {%- endif -%}
    {%- if by_time -%}
        {%- do parts.append(
            "select filename as source_file, size as source_file_bytes,"
            ~ " last_modified as source_file_modified_at,"
            ~ " 'size-and-time:' || size || ':' || epoch_us(last_modified) as source_file_hash"
            ~ " from read_blob([" ~ sql_string_list(by_time) ~ "])"
        ) -%}
    {%- endif -%}
    {{ return("(" ~ parts | join(" union all ") ~ ")") }}
{% endmacro %}
