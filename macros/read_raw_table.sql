{#-
    A subquery over one raw table of the input contract, with every contract column
    (absent optional columns as null) and the file each row came from, so that
    staging's safe casts, not the reader, decide what is bad. CSV is read as text. A
    Parquet column keeps its own type where every file stores it as the contract's
    kind of value (get_raw_table_contract: text, timestamp or number); where one file
    does not (epoch numbers beside timestamps, a price written as text), the column is
    read as text from every file. Files whose column types differ are read in groups
    of files that agree, so that no file's type has to be cast to another's.
    Where arriving_kinds (a dict) is given, it is filled with how each typed column
    arrives: 'timestamp', 'integer' or 'number' where every file stores it so, else
    absent (text), for staging to skip the parsing of text where no text arrives.
    An empty file (no header, no rows) is skipped with a warning naming it. A missing
    required column fails the build with the file and column named; an absent
    optional table gives an empty relation with the same columns.
-#}
{% macro read_raw_table(table_name, arriving_kinds=none) %}
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
    {%- set columns_by_file = describe_raw_files(location['format'], location['files']) -%}
    {%- set files = [] -%}
    {%- for file in location['files'] -%}
        {%- set file_columns = columns_by_file[file] -%}
        {%- if not file_columns -%}
            {%- do exceptions.warn(
                "Input contract: " ~ file ~ " is empty (no columns, no rows) and was skipped:"
                ~ " it holds nothing to lose. Remove it to silence this warning"
            ) -%}
        {%- else -%}
            {%- for column in contract['required'] -%}
                {%- if column not in file_columns -%}
                    {{ exceptions.raise_compiler_error(
                        "Input contract: " ~ file ~ " has no column '" ~ column ~ "', which the '"
                        ~ table_name ~ "' table requires (columns found: "
                        ~ (file_columns.keys() | join(', ')) ~ ")"
                    ) }}
                {%- endif -%}
            {%- endfor -%}
            {%- do files.append(file) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not files -%}
        {{ return(empty_raw_table(all_columns)) }}
    {%- endif -%}
    {%- set integer_types = [
        'TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT',
        'UINTEGER', 'UBIGINT', 'UHUGEINT',
    ] -%}
    {%- set accepted_types = {
        'text': ['VARCHAR'],
        'timestamp': [
            'TIMESTAMP', 'TIMESTAMP WITH TIME ZONE', 'TIMESTAMP_S', 'TIMESTAMP_MS',
            'TIMESTAMP_NS', 'DATE',
        ],
        'number': integer_types + ['FLOAT', 'DOUBLE'],
    } -%}
    {#- A column is read as text where any file stores it as another kind of value;
        files are grouped where no column's type differs between them. -#}
    {%- set present = [] -%}
    {%- set stored_types = {} -%}
    {%- set as_text = [] -%}
    {%- set groups = [] -%}
    {%- for file in files -%}
        {%- set file_columns = columns_by_file[file] -%}
        {%- set chosen = [] -%}
        {%- for candidate in groups -%}
            {%- set conflicts = [] -%}
            {%- for column in all_columns if column in file_columns and column in candidate['types'] -%}
                {%- if file_columns[column] != candidate['types'][column] -%}
                    {%- do conflicts.append(column) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- if not conflicts and not chosen -%}
                {%- do chosen.append(candidate) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if not chosen -%}
            {%- do groups.append({'files': [], 'types': {}}) -%}
            {%- do chosen.append(groups[-1]) -%}
        {%- endif -%}
        {%- set group = chosen[0] -%}
        {%- do group['files'].append(file) -%}
        {%- for column in all_columns if column in file_columns -%}
            {%- do group['types'].update({column: file_columns[column]}) -%}
            {%- if column not in present -%}{%- do present.append(column) -%}{%- endif -%}
            {%- set column_type = file_columns[column] -%}
            {%- do stored_types.setdefault(column, []).append(column_type) -%}
            {%- set kind = contract['kinds'].get(column, 'text') -%}
            {%- if column_type not in accepted_types[kind]
                and not (kind == 'number' and column_type.startswith('DECIMAL'))
                and column not in as_text -%}
                {%- do as_text.append(column) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if location['format'] == 'csv' -%}
        {%- set groups = [{'files': files, 'types': {}}] -%}
    {%- elif arriving_kinds is not none -%}
        {%- for column, kind in contract['kinds'].items() if column in present and column not in as_text -%}
            {%- set integer = kind == 'number'
                and stored_types[column] | reject('in', integer_types) | list | length == 0 -%}
            {%- do arriving_kinds.update({column: 'integer' if integer else kind}) -%}
        {%- endfor -%}
    {%- endif -%}
    (
        {% for group in groups -%}
            {%- set file_list = "[" ~ sql_string_list(group['files']) ~ "]" -%}
            {%- if not loop.first %}
        union all by name
            {% endif -%}
        select
            {% for column in all_columns -%}
                {%- if column not in present -%}
                    null::varchar as {{ column }},
                {%- elif location['format'] == 'csv' -%}
                    {{ adapter.quote(column) }} as {{ column }},
                {%- elif column not in group['types'] -%}
                    {#- absent from this group's files: union by name fills it in -#}
                {%- elif column in as_text -%}
                    cast({{ adapter.quote(column) }} as varchar) as {{ column }},
                {%- else -%}
                    {{ adapter.quote(column) }} as {{ column }},
                {%- endif %}
            {% endfor -%}
            filename as source_file
        {% if location['format'] == 'parquet' -%}
        from read_parquet({{ file_list }}, union_by_name = true, filename = true)
        {%- else -%}
        from read_csv({{ file_list }}, header = true, all_varchar = true, union_by_name = true, filename = true)
        {%- endif %}
        {% endfor -%}
    )
{% endmacro %}
