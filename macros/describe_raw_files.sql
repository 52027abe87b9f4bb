{#-
    The top-level columns of each raw file, {file: {column: DuckDB type}} with column
    names lower-cased, from Parquet metadata or the CSV header line; no rows are read.
    CSV columns are all VARCHAR: CSV is read as text. An empty file (no bytes, or a CSV
    of blank lines only) maps to {}: it has neither a header nor rows.
-#}
{% macro describe_raw_files(file_format, files) %}
    {%- set empty = run_query(
        "select filename from read_blob([" ~ sql_string_list(files) ~ "]) where size = 0"
    ).columns[0].values() | list -%}
    {%- set described = {} -%}
    {%- for file in files -%}
        {%- do described.update({file: {}}) -%}
    {%- endfor -%}
    {%- set non_empty = files | reject('in', empty) | list -%}
    {%- if non_empty and file_format == 'parquet' -%}
        {%- set schema_rows = run_query(
            "select file_name, column_id, lower(name), duckdb_type, coalesce(num_children, 0)"
            ~ " from parquet_schema([" ~ sql_string_list(non_empty) ~ "])"
            ~ " order by file_name, column_id"
        ).rows -%}
        {#- Each file's schema is a tree in depth-first order, its root first (column_id 0):
            a column is top-level where the root is the only node open above it. -#}
        {%- set open = [] -%}
        {%- for file, column_id, name, column_type, children in schema_rows -%}
            {%- if column_id == 0 -%}
                {%- for _ in range(open | length) -%}{%- do open.pop() -%}{%- endfor -%}
                {%- do open.append(children) -%}
            {%- else -%}
                {%- if open | length == 1 -%}
                    {%- do described[file].update({name: column_type}) -%}
                {%- endif -%}
                {%- do open.append(open.pop() - 1) -%}
                {%- if children > 0 -%}
                    {%- do open.append(children) -%}
                {%- endif -%}
                {%- for _ in range(open | length) -%}
                    {%- if open and open[-1] == 0 -%}{%- do open.pop() -%}{%- endif -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
    {%- elif non_empty -%}
        {%- for file in non_empty -%}
            {%- set quoted = "'" ~ file | replace("'", "''") ~ "'" -%}
            {%- set names = run_query(
                "describe select * from read_csv(" ~ quoted ~ ", header = true, all_varchar = true)"
            ).columns[0].values() | map('lower') | list -%}
            {#- DuckDB names the one column of a file without a header line column0 -#}
            {%- set is_blank = names == ['column0'] and run_query(
                "select trim(content, chr(32) || chr(9) || chr(10) || chr(13)) = ''"
                ~ " from read_text(" ~ quoted ~ ")"
            ).columns[0].values()[0] -%}
            {%- if not is_blank -%}
                {%- for name in names -%}
                    {%- do described[file].update({name: 'VARCHAR'}) -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(described) }}
{% endmacro %}
