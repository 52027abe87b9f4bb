{#-
    A subquery over one raw table of the input contract, with every contract column
    (absent optional columns as null) and the file each row came from. CSV is read
    as text so that staging's safe casts, not the CSV sniffer, decide what is bad.
    A missing required column fails the build with the file and column named; an
    absent optional table gives an empty relation with the same columns.
-#}
{% macro read_raw_table(table_name) %}
    {%- set contract = get_raw_table_contract(table_name) -%}
    {%- set all_columns = contract['required'] + contract['optional'] -%}
    {%- if not execute -%}
        {{ return(empty_raw_table(all_columns)) }}
    {%- endif -%}
    {%- set location = find_raw_files(table_name) -%}
    {%- if location is none -%}
        {%- if contract['is_required_table'] -%}
            {{ exceptions.raise_compiler_error(
                "Input contract: no '" ~ table_name ~ "' table under raw_path '" ~ var('raw_path')
                ~ "' (expected " ~ table_name ~ ".parquet, " ~ table_name ~ "/*.parquet, "
                ~ table_name ~ ".csv or " ~ table_name ~ "/*.csv)"
            ) }}
        {%- endif -%}
        {{ return(empty_raw_table(all_columns)) }}
    {%- endif -%}
    {%- set file_list = "[" ~ sql_string_list(location['files']) ~ "]" -%}
    {%- if location['format'] == 'parquet' -%}
        {%- set reader = "read_parquet(" ~ file_list ~ ", union_by_name = true, filename = true)" -%}
        {%- set schema_rows = run_query(
            "select file_name, lower(name) from parquet_schema(" ~ file_list ~ ")"
        ) -%}
        {%- set columns_by_file = {} -%}
        {%- for row in schema_rows.rows -%}
            {%- do columns_by_file.setdefault(row[0], []).append(row[1]) -%}
        {%- endfor -%}
    {%- else -%}
        {%- set reader = "read_csv(" ~ file_list
            ~ ", header = true, all_varchar = true, union_by_name = true, filename = true)" -%}
        {%- set columns_by_file = {} -%}
        {%- for file in location['files'] -%}
            {%- set described = run_query(
                "describe select * from read_csv('" ~ file | replace("'", "''")
                ~ "', header = true, all_varchar = true)"
            ) -%}
            {%- do columns_by_file.update({file: described.columns[0].values() | map('lower') | list}) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set present = [] -%}
    {%- for file, file_columns in columns_by_file.items() -%}
        {%- for column in contract['required'] -%}
            {%- if column not in file_columns -%}
                {{ exceptions.raise_compiler_error(
                    "Input contract: " ~ file ~ " has no column '" ~ column ~ "', which the '"
                    ~ table_name ~ "' table requires (columns found: " ~ (file_columns | join(', ')) ~ ")"
                ) }}
            {%- endif -%}
        {%- endfor -%}
        {%- for column in file_columns -%}
            {%- if column not in present -%}{%- do present.append(column) -%}{%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    (
        select
            {% for column in all_columns -%}
                {%- if column in present -%}
                    {{ adapter.quote(column) }} as {{ column }},
                {%- else -%}
                    null::varchar as {{ column }},
                {%- endif %}
            {% endfor -%}
            filename as source_file
        from {{ reader }}
    )
{% endmacro %}
