{#-
    The feature registry: columns of `model_name` whose YAML entry carries
    meta: {feature: true}, in YAML order, as dicts {name, description,
    monotone_constraint}. Read from the parsed project, so adding a feature is
    a SQL column plus its YAML entry and nothing in Python.
-#}
{% macro get_feature_columns(model_name) %}
    {%- set features = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.name == model_name
            and node.package_name == project_name -%}
            {%- for column in node.columns.values() -%}
                {%- set meta = column.meta or {} -%}
                {%- if meta.get('feature') -%}
                    {%- do features.append({
                        'name': column.name,
                        'description': column.description | trim,
                        'monotone_constraint': meta.get('monotone_constraint', 0) | int,
                    }) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(features) }}
{% endmacro %}
