{#- The typed columns parsed. A value is unparseable where it is present but does not
    parse; text that is blank is missing, as an empty CSV field is. -#}
{%- set arriving_kinds = {} -%}
{%- set raw_events = read_raw_table('events', arriving_kinds) -%}
{%- set parsed = {
    'event_time': parse_timestamp('event_time', arriving_kinds.get('event_time', 'text')),
    'price': 'try_cast(price as double)',
    'quantity': parse_whole_number('quantity', arriving_kinds.get('quantity', 'text')),
    'amount': 'try_cast(amount as double)',
    'rating': parse_whole_number('rating', arriving_kinds.get('rating', 'text')),
} -%}
{%- set unparseable = {} -%}
{%- for column, value in parsed.items() -%}
    {%- if column in arriving_kinds -%}
        {%- do unparseable.update({column: "(" ~ column ~ " is not null and " ~ value ~ " is null)"}) -%}
    {%- else -%}
        {%- do unparseable.update({column: "(case when " ~ value ~ " is null then nullif(trim("
            ~ column ~ "), '') is not null else false end)"}) -%}
    {%- endif -%}
{%- endfor -%}

with

source as (

    select * from {{ raw_events }}

),

renamed as (

    select
        nullif(trim(cast(event_id as varchar)), '') as event_id,
        nullif(trim(cast(user_id as varchar)), '') as user_id,
        {{ parsed['event_time'] }} as event_at,
        lower(nullif(trim(cast(event_type as varchar)), '')) as raw_event_type,
        nullif(trim(cast(item_id as varchar)), '') as item_id,
        nullif(trim(cast(category as varchar)), '') as category,
        {{ parsed['price'] }} as price,
        {{ parsed['quantity'] }} as quantity,
        {{ parsed['amount'] }} as amount,
        nullif(trim(cast(order_id as varchar)), '') as order_id,
        nullif(trim(cast(session_id as varchar)), '') as session_id,
        {{ parsed['rating'] }} as rating,
        cast(review_text as varchar) as review_text,
        lower(nullif(trim(cast(channel as varchar)), '')) as channel,
        source_file,
        {{ unparseable['event_time'] }} as has_unparseable_event_time,
        {{ unparseable['price'] }}
        or {{ unparseable['amount'] }}
        or {{ unparseable['quantity'] }}
        or {{ unparseable['rating'] }} as has_unparseable_number,
        -- the row as it arrived where a value did not cast (the typed columns keep
        -- the rest faithfully); built only for those rows
        case
            when
                {{ unparseable.values() | join('\n                or ') }}
                then {{ raw_values_json('events') }}
        end as unparseable_raw_values

    from source

)

select * from renamed
