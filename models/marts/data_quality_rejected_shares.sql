{#-
    One row per raw events file and per event date (scope file or day): its raw rows,
    how many were rejected, their share and the most frequent reject reason, against
    the bound of its scope in seeds/data_quality_thresholds.csv. The build warns on
    each row above its bound (a test with severity warn) and `purchasing-power summary`
    lists them: a file whose every row was rejected no longer passes in silence.
    A row's exact duplicates count in the file of its first copy; rows without an
    event time have no day and count in their file only.
-#}
with

{# read twice, three columns each time: no copy of every validated row is kept -#}
int_events_validated as not materialized (

    select
        source_file,
        event_date,
        reject_reason,
        duplicate_rows_dropped
    from {{ ref('int_events_validated') }}

),

data_quality_thresholds as (

    select
        scope,
        max_rejected_share,
        min_rows_in
    from {{ ref('data_quality_thresholds') }}

),

reasons_counted as (

    select
        'file' as scope,
        source_file,
        cast(null as date) as event_date,
        reject_reason,
        count(*) as validated_rows,
        sum(duplicate_rows_dropped) as duplicate_rows
    from int_events_validated
    group by source_file, reject_reason

    union all

    -- rows without an event time have no day
    select
        'day' as scope,
        cast(null as varchar) as source_file,
        event_date,
        reject_reason,
        count(*) as validated_rows,
        sum(duplicate_rows_dropped) as duplicate_rows
    from int_events_validated
    where event_date is not null
    group by event_date, reject_reason

),

shares_computed as (

    select
        scope,
        source_file,
        event_date,
        cast(sum(validated_rows + duplicate_rows) as bigint) as rows_in,
        coalesce(sum(case when reject_reason is not null then validated_rows end), 0)
            as rows_rejected,
        -- clean rows (no reason) last, so null only where nothing was rejected
        first(
            reject_reason
            order by reject_reason is null asc, validated_rows desc, reject_reason asc
        ) as top_reject_reason,
        max(case when reject_reason is not null then validated_rows end)
            as top_reject_reason_rows
    from reasons_counted
    group by scope, source_file, event_date

),

bounds_compared as (

    select
        shares_computed.scope,
        shares_computed.source_file,
        shares_computed.event_date,
        shares_computed.rows_in,
        shares_computed.rows_rejected,
        shares_computed.rows_rejected / shares_computed.rows_in as rejected_share,
        shares_computed.top_reject_reason,
        coalesce(shares_computed.top_reject_reason_rows, 0) as top_reject_reason_rows,
        data_quality_thresholds.max_rejected_share,
        data_quality_thresholds.min_rows_in,
        coalesce(
            shares_computed.rows_in >= data_quality_thresholds.min_rows_in
            and shares_computed.rows_rejected / shares_computed.rows_in
            > data_quality_thresholds.max_rejected_share,
            false
        ) as is_rejected_share_above_bound
    from shares_computed
    left join data_quality_thresholds
        on shares_computed.scope = data_quality_thresholds.scope

)

select * from bounds_compared
