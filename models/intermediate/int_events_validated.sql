{#-
    Every raw event row, once: exact duplicates (identical in every contract
    column) are collapsed into one row that counts how many copies were dropped.
    Each row gets at most one reject_reason, first match wins; null means clean.
    Conflicting duplicates (one event_id, different contents) are all rejected:
    no version can be trusted over another. Rows whose event_id occurs once (nearly
    all) pass straight through; only repeated ids are grouped.
-#}
{%- set as_of = var('as_of') -%}
{%- set contract_columns = [
    'event_id', 'user_id', 'event_at', 'raw_event_type', 'item_id', 'category', 'price',
    'quantity', 'amount', 'order_id', 'session_id', 'rating', 'review_text', 'channel',
    'has_unparseable_event_time', 'has_unparseable_number', 'unparseable_raw_values',
] -%}

with

stg_raw__events as (

    select
        {% for column in contract_columns -%}
            {{ column }},
        {% endfor -%}
        source_file
    from {{ ref('stg_raw__events') }}

),

event_types as (

    select
        raw_event_type,
        event_type
    from {{ ref('event_types') }}

),

repeated_event_ids as (

    select event_id
    from stg_raw__events
    group by event_id
    having count(*) > 1

),

rows_with_unique_ids as (

    select
        stg_raw__events.*,
        0 as duplicate_rows_dropped,
        1 as versions_of_event_id
    from stg_raw__events
    anti join repeated_event_ids
        on stg_raw__events.event_id = repeated_event_ids.event_id

),

rows_with_repeated_ids as (

    select stg_raw__events.*
    from stg_raw__events
    semi join repeated_event_ids
        on stg_raw__events.event_id = repeated_event_ids.event_id

),

repeated_rows_collapsed as (

    select
        {% for column in contract_columns -%}
            {{ column }},
        {% endfor -%}
        min(source_file) as source_file,
        count(*) - 1 as duplicate_rows_dropped
    from rows_with_repeated_ids
    group by all

),

repeated_versions_counted as (

    select
        *,
        count(*) over (partition by event_id) as versions_of_event_id
    from repeated_rows_collapsed

),

rows_combined as (

    select * from rows_with_unique_ids
    union all by name
    select * from repeated_versions_counted

),

types_mapped as (

    select
        rows_combined.*,
        event_types.event_type
    from rows_combined
    left join event_types
        on rows_combined.raw_event_type = event_types.raw_event_type

),

reasons_assigned as (

    select
        *,
        case
            when event_id is null then 'missing_event_id'
            when user_id is null then 'missing_user_id'
            when has_unparseable_event_time then 'unparseable_event_time'
            when event_at is null then 'missing_event_time'
            when raw_event_type is null then 'missing_event_type'
            when versions_of_event_id > 1 then 'conflicting_duplicate_event_id'
            when event_type is null then 'unknown_event_type'
            {% if as_of -%}
                when event_at >= cast('{{ as_of }}' as date) then 'event_time_not_before_as_of'
            {% endif -%}
            when has_unparseable_number then 'unparseable_number'
            when price < 0 or not isfinite(price) then 'invalid_price'
            when amount < 0 or not isfinite(amount) then 'invalid_amount'
            when quantity <= 0 then 'invalid_quantity'
            when rating not between 1 and 5 then 'invalid_rating'
        end as reject_reason
    from types_mapped

),

defaults_applied as (

    select
        event_id,
        user_id,
        event_at,
        cast(event_at as date) as event_date,
        event_type,
        raw_event_type,
        item_id,
        category,
        price,
        coalesce(quantity, 1) as quantity,
        case
            when event_type in ('purchase', 'refund')
                then coalesce(amount, price * coalesce(quantity, 1), 0)
        end as amount,
        order_id,
        session_id,
        rating,
        review_text,
        channel,
        source_file,
        -- the row as it arrived, for quarantined rows only
        case
            when reject_reason is not null
                then coalesce(
                    unparseable_raw_values,
                    {{ raw_values_json(
                        'events',
                        {'event_time': 'event_at', 'event_type': 'raw_event_type'}
                    ) }}
                )
        end as raw_values,
        duplicate_rows_dropped,
        reject_reason,
        reject_reason is null as is_clean
    from reasons_assigned

)

select * from defaults_applied
