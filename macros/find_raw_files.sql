{#-
    Finds the files of one raw table under var('raw_path'): <name>.parquet,
    <name>/*.parquet, <name>.csv or <name>/*.csv. Returns {format, files, location},
    or none when the table is absent. Two forms present at once is an error: the
    build must not guess which one is current.
-#}
{% macro find_raw_files(table_name) %}
    {%- set raw_path = var('raw_path') | string -%}
    {%- set raw_path = raw_path[:-1] if raw_path.endswith('/') else raw_path -%}
    {%- set candidates = [
        ('parquet', raw_path ~ '/' ~ table_name ~ '.parquet'),
        ('parquet', raw_path ~ '/' ~ table_name ~ '/*.parquet'),
        ('csv', raw_path ~ '/' ~ table_name ~ '.csv'),
        ('csv', raw_path ~ '/' ~ table_name ~ '/*.csv'),
    ] -%}
    {%- set found = [] -%}
    {%- for file_format, pattern in candidates -%}
        {%- set files = run_query(
            "select file from glob('" ~ pattern | replace("'", "''") ~ "') order by file"
        ).columns[0].values() -%}
        {%- if files | length > 0 -%}
            {%- do found.append({'format': file_format, 'files': files | list, 'location': pattern}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if found | length > 1 -%}
        {{ exceptions.raise_compiler_error(
            "Input contract: raw table '" ~ table_name ~ "' is present in more than one form ("
            ~ (found | map(attribute='location') | join(', '))
            ~ "); keep exactly one of <name>.parquet, <name>/*.parquet, <name>.csv, <name>/*.csv"
        ) }}
    {%- endif -%}
    {{ return(found[0] if found else none) }}
{% endmacro %}
