{#-
    Every raw event row, once: exact duplicates (identical in every contract
    column) are collapsed into one row that counts how many copies were dropped.
    Each row gets at most one reject_reason, first match wins; null means clean.
    Conflicting duplicates (one event_id, different contents) are all rejected:
    no version can be trusted over another. Rows whose event_id occurs once (nearly
    all) pass straight through; only repeated ids are grouped.

    Incremental: a rerun validates the raw files it has not seen (each row keeps its
    file's size, modification time and content hash, those of the other files its
    copies came from, and validated_at, when the dbt run that validated it started; a
    file is known by its content, so a copied, touched or moved file is not new) and, read again from
    every file, each event_id whose verdict they or a changed setting could alter: ids
    of the new files already built, every id of a type the event_types seed now maps
    otherwise, ids rejected for an earlier as_of, and with var('as_of') set, ids at
    or after it. Those ids are replaced whole (delete+insert). Rows without an event_id
    have no key to replace them by: those whose type the seed now maps otherwise are
    read again from every file and validated anew, and the post-hook
    (delete_rows_mapped_otherwise) removes their old copies. A file changed or removed
    since fails the build (find_new_raw_files); a change to this model's logic needs
    --full-refresh, and so does a warehouse validated before other_source_files (the
    build says so: require_built_columns).
-#}
{%- set as_of = var('as_of') -%}
{%- set contract_columns = [
    'event_id', 'user_id', 'event_at', 'raw_event_type', 'item_id', 'category', 'price',
    'quantity', 'amount', 'order_id', 'session_id', 'rating', 'review_text', 'channel',
    'has_unparseable_event_time', 'has_unparseable_number', 'unparseable_raw_values',
] -%}
{%- if is_incremental() -%}
    {{- require_built_columns(['other_source_files', 'source_file_hash']) -}}
    {%- set raw_files = find_new_raw_files(this, ref('stg_raw__event_files')) -%}
    {%- set new_files = raw_files['new_files'] -%}
    {%- set in_new_files = "source_file in (" ~ sql_string_list(new_files) ~ ")" if new_files else "false" -%}
{%- endif %}

with

{# read twice by an incremental run, each time for a few files or ids; once otherwise -#}
stg_raw__events as not materialized (

    select
        {% for column in contract_columns -%}
            {{ column }},
        {% endfor -%}
        source_file
    from {{ ref('stg_raw__events') }}

),

{# the files as listed now; a rerun has their hashes from find_new_raw_files, which read
   only the files no built row knows by path and times -#}
stg_raw__event_files as materialized (

    select
        source_file,
        source_file_bytes,
        source_file_modified_at,
        source_file_hash
    {% if is_incremental() -%}
        from {{ raw_files['files'] }}
    {%- else -%}
        from {{ ref('stg_raw__event_files') }}
    {%- endif %}

),

event_types as (

    select
        raw_event_type,
        event_type
    from {{ ref('event_types') }}

),

{% if is_incremental() -%}
{#- Every built row, read afresh by each step for the columns it needs, not kept as one
    copy (DuckDB materializes a CTE read twice): the copy, 125M rows at large, made a
    rerun that validated one new day's file take 33 s, against 10.5 s (bench/README.md). #}
built as not materialized (

    select
        event_id,
        event_at,
        raw_event_type,
        event_type,
        reject_reason
    from {{ this }}

),

rows_of_new_files as not materialized (

    select * from stg_raw__events
    where {{ in_new_files }}

),

-- types of built rows that the event_types seed now maps otherwise (none unless the seed
-- changed), from the few distinct (type, mapping) pairs, so that no id is read for it
types_mapped_otherwise as materialized (

    select built_types.raw_event_type
    from (select distinct raw_event_type, event_type from built) as built_types
    left join event_types
        on built_types.raw_event_type = event_types.raw_event_type
    where built_types.event_type is distinct from event_types.event_type

),

event_ids_to_revisit as (

    -- ids of the new files that earlier files gave too
    select built.event_id
    from built
    semi join rows_of_new_files
        on built.event_id = rows_of_new_files.event_id

    union

    -- ids of a type the seed now maps otherwise
    select built.event_id
    from built
    semi join types_mapped_otherwise
        on built.raw_event_type = types_mapped_otherwise.raw_event_type
    where built.event_id is not null

    union

    -- ids whose verdict against as_of may have changed with it: those rejected for an
    -- earlier as_of (clean now, with as_of unset or later), and with as_of set, those at
    -- or after it
    select event_id
    from built
    where
        event_id is not null
        and (
            reject_reason = 'event_time_not_before_as_of'
            {%- if as_of %}
                or event_at >= cast('{{ as_of }}' as date)
            {%- endif %}
        )

),

{% endif -%}
{#- The raw rows to validate, read by three steps. A rerun's few rows are kept as one
    copy; a full build reads the files afresh in each step, the id count taking only
    event_id: one copy of every event spilled 21.5 GB at 125M events, and the model
    took 292 s against 198 s (bench/README.md). #}
rows_to_validate as {{ 'not materialized ' if not is_incremental() }}(

    {% if is_incremental() -%}
        select * from rows_of_new_files
        union all
        select * from stg_raw__events
        where
            not ({{ in_new_files }})
            and event_id in (select event_id from event_ids_to_revisit)
        union all
        select * from stg_raw__events
        where
            not ({{ in_new_files }})
            and event_id is null
            and raw_event_type in (select raw_event_type from types_mapped_otherwise)
    {%- else -%}
        select * from stg_raw__events
    {%- endif %}

),

repeated_event_ids as (

    select event_id
    from rows_to_validate
    group by event_id
    having count(*) > 1

),

rows_with_unique_ids as (

    select
        rows_to_validate.*,
        0 as duplicate_rows_dropped,
        1 as versions_of_event_id
    from rows_to_validate
    anti join repeated_event_ids
        on rows_to_validate.event_id = repeated_event_ids.event_id

),

rows_with_repeated_ids as (

    select rows_to_validate.*
    from rows_to_validate
    semi join repeated_event_ids
        on rows_to_validate.event_id = repeated_event_ids.event_id

),

repeated_rows_collapsed as (

    -- every file that held a copy is kept: a file of copies only has no row of its own,
    -- and find_new_raw_files must still see it as validated
    select
        {% for column in contract_columns -%}
            rows_with_repeated_ids.{{ column }},
        {% endfor -%}
        min(rows_with_repeated_ids.source_file) as source_file,
        count(*) - 1 as duplicate_rows_dropped,
        list(distinct {
            'source_file': stg_raw__event_files.source_file,
            'source_file_bytes': stg_raw__event_files.source_file_bytes,
            'source_file_modified_at': stg_raw__event_files.source_file_modified_at,
            'source_file_hash': stg_raw__event_files.source_file_hash
        }) as files_with_copies
    from rows_with_repeated_ids
    left join stg_raw__event_files
        on rows_with_repeated_ids.source_file = stg_raw__event_files.source_file
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
        event_types.event_type,
        stg_raw__event_files.source_file_bytes,
        stg_raw__event_files.source_file_modified_at,
        stg_raw__event_files.source_file_hash
    from rows_combined
    left join event_types
        on rows_combined.raw_event_type = event_types.raw_event_type
    left join stg_raw__event_files
        on rows_combined.source_file = stg_raw__event_files.source_file

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
        source_file_bytes,
        source_file_modified_at,
        source_file_hash,
        nullif(
            list_filter(files_with_copies, lambda held: held['source_file'] != source_file), []
        ) as other_source_files,
        -- the dbt run that validated the row: models built from these rows rebuild what
        -- runs they have not seen touched (sessions, user-category days)
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp) as validated_at,
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
