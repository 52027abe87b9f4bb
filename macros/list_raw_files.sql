{#-
    A subquery listing the files of one raw table, one row per file: its size,
    modification time and what it is known by (fingerprint_raw_files: the md5 of its
    bytes, read only when a query selects source_file_hash). Empty when the table is
    absent. An incremental model compares it with the files it was built from to tell
    new files from changed or removed ones (find_new_raw_files).
-#}
{% macro list_raw_files(table_name) %}
    {%- set location = find_raw_files(table_name) if execute else none -%}
    {{ return(fingerprint_raw_files(location['files'] if location is not none else [])) }}
{% endmacro %}
