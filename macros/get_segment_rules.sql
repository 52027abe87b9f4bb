{#-
    The rules of seeds/segment_rules.csv (`rules`, its relation) by priority, as dicts
    {segment, priority, condition}, each condition checked before any user is
    segmented: it must parse as one SQL expression, name only columns of `inputs`
    (column name -> data type: the documented input columns of customer_segments),
    hold no subquery or window, evaluate on them and be boolean. A rule that fails stops the build with
    its segment and priority named. No rules while parsing, in a unit test (whose
    `rules` is a fixture name: give them with overrides: macros: get_segment_rules) or
    before the seed is loaded (linting an empty warehouse).
-#}
{% macro get_segment_rules(rules, inputs) %}
    {%- if not execute or rules is string -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set relation = load_relation(rules) -%}
    {%- if relation is none -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set rows = run_query(
        "select segment, priority, condition from " ~ relation ~ " order by priority"
    ).rows -%}
    {%- set names = inputs.keys() | map('lower') | list -%}
    {%- set typed_nulls -%}
        select
        {%- for name, data_type in inputs.items() %}
            cast(null as {{ data_type }}) as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    {%- endset -%}
    {%- set checked = [] -%}
    {%- for row in rows -%}
        {%- set rule = "segment rule " ~ row['segment'] ~ " (priority " ~ row['priority']
            ~ ") of " ~ rules.identifier -%}
        {%- set condition = (row['condition'] or '') | trim -%}
        {%- if not condition -%}
            {{ exceptions.raise_compiler_error(rule ~ " has no condition") }}
        {%- endif -%}
        {%- set probe = "select (" ~ condition ~ ") from segment_inputs" -%}
        {%- set parsed_text = run_query(
            "select json_serialize_sql('" ~ probe | replace("'", "''") ~ "')"
        ).rows[0][0] -%}
        {%- set parsed = fromjson(parsed_text) -%}
        {%- if parsed['error'] -%}
            {{ exceptions.raise_compiler_error(
                rule ~ ": the condition does not parse (" ~ parsed['error_message'] ~ "): "
                ~ condition
            ) }}
        {%- endif -%}
        {%- set statements = parsed['statements'] -%}
        {%- set node = statements[0]['node'] -%}
        {%- if statements | length != 1 or node['type'] != 'SELECT_NODE'
            or node['select_list'] | length != 1
            or node['from_table'].get('table_name') != 'segment_inputs'
            or node['where_clause'] is not none -%}
            {{ exceptions.raise_compiler_error(
                rule ~ ": the condition must be one expression over the inputs: " ~ condition
            ) }}
        {%- endif -%}
        {%- if '"class":"SUBQUERY"' in parsed_text or '"class":"WINDOW"' in parsed_text -%}
            {{ exceptions.raise_compiler_error(
                rule ~ ": the condition may not hold a subquery or a window: " ~ condition
            ) }}
        {%- endif -%}
        {#- each column reference: the list after "column_names": up to its ] (no regex:
            its escapes warn in Jinja's strings) -#}
        {%- for part in parsed_text.split('"column_names":[')[1:] -%}
            {%- set name = fromjson('[' ~ part.split(']')[0] ~ ']') -%}
            {%- if name | length != 1 or (name[0] | lower) not in names -%}
                {{ exceptions.raise_compiler_error(
                    rule ~ ": the condition names " ~ name | join('.') ~ ", which is not an"
                    ~ " input column (" ~ names | join(', ') ~ "): " ~ condition
                ) }}
            {%- endif -%}
        {%- endfor -%}
        {#- binding fails on an unknown function or operator, a type mismatch or an
            aggregate: DuckDB's error would not name the rule, this one does -#}
        {%- set data_type = try_or_compiler_error(
            rule ~ ": the condition cannot be evaluated on the input columns (an unknown"
            ~ " function or operator, a type mismatch or an aggregate?): " ~ condition,
            run_query,
            "select typeof((" ~ condition ~ ")) from (" ~ typed_nulls ~ ") as segment_inputs"
            ~ " where (" ~ condition ~ ") or true"
        ).rows[0][0] -%}
        {%- if data_type != 'BOOLEAN' -%}
            {{ exceptions.raise_compiler_error(
                rule ~ ": the condition is " ~ data_type ~ ", not a boolean: " ~ condition
            ) }}
        {%- endif -%}
        {%- do checked.append({
            'segment': row['segment'],
            'priority': row['priority'] | int,
            'condition': condition,
        }) -%}
    {%- endfor -%}
    {{ return(checked) }}
{% endmacro %}
