{#- The input contract (DESIGN.md): columns of each raw table, required ones first. -#}
{% macro get_raw_table_contract(table_name) %}
    {%- set contracts = {
        'events': {
            'required': ['event_id', 'user_id', 'event_time', 'event_type'],
            'optional': [
                'item_id', 'category', 'price', 'quantity', 'amount', 'order_id',
                'session_id', 'rating', 'review_text', 'channel',
            ],
            'is_required_table': true,
        },
        'users': {
            'required': ['user_id'],
            'optional': ['signed_up_at', 'region'],
            'is_required_table': false,
        },
        'items': {
            'required': ['item_id'],
            'optional': ['category', 'list_price', 'brand'],
            'is_required_table': false,
        },
    } -%}
    {%- if table_name not in contracts -%}
        {{ exceptions.raise_compiler_error("unknown raw table '" ~ table_name ~ "'") }}
    {%- endif -%}
    {{ return(contracts[table_name]) }}
{% endmacro %}
