{#-
    The input contract (DESIGN.md): columns of each raw table, required ones first, and
    the kind of value each typed column holds (timestamp or number; every other column
    is text). read_raw_table passes a Parquet column through in its own type only where
    every file stores it as that kind; staging's safe casts decide the rest.
-#}
{% macro get_raw_table_contract(table_name) %}
    {%- set contracts = {
        'events': {
            'required': ['event_id', 'user_id', 'event_time', 'event_type'],
            'optional': [
                'item_id', 'category', 'price', 'quantity', 'amount', 'order_id',
                'session_id', 'rating', 'review_text', 'channel',
            ],
            'kinds': {
                'event_time': 'timestamp', 'price': 'number', 'quantity': 'number',
                'amount': 'number', 'rating': 'number',
            },
            'is_required_table': true,
        },
        'users': {
            'required': ['user_id'],
            'optional': ['signed_up_at', 'region'],
            'kinds': {'signed_up_at': 'timestamp'},
            'is_required_table': false,
        },
        'items': {
            'required': ['item_id'],
            'optional': ['category', 'list_price', 'brand'],
            'kinds': {'list_price': 'number'},
            'is_required_table': false,
        },
    } -%}
    {%- if table_name not in contracts -%}
        {{ exceptions.raise_compiler_error("unknown raw table '" ~ table_name ~ "'") }}
    {%- endif -%}
    {{ return(contracts[table_name]) }}
{% endmacro %}
