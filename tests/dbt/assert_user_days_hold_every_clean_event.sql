{#-
    The incremental user-day base must hold every clean event of every day. It
    rebuilds only the days from its last built day minus user_days_lookback_days, so
    a change to an older day after it was built (events arriving later than the
    lookback, a late copy of an old event_id with other values, which turns the old
    event into a conflicting duplicate, or a redelivered file with other values) leaves
    that day stale. Each day is compared on a checksum, not only on its count of
    events: which users had how many events (an exact sum of hashed user ids), and the
    purchase and refund lines and amounts (exact decimal sums). Each row returned is
    such a day: run `dbt build --full-refresh` (or --select the base with it).
-#}
with

clean_events_per_day as (

    select
        event_date,
        count(*) as clean_events,
        sum(hash(user_id)::hugeint) as user_checksum,
        count(*) filter (where event_type = 'purchase') as purchase_lines,
        coalesce({{ sum_exactly("case when event_type = 'purchase' then amount end") }}, 0)
            as purchase_amount,
        count(*) filter (where event_type = 'refund') as refunds,
        coalesce({{ sum_exactly("case when event_type = 'refund' then amount end") }}, 0)
            as refund_amount
    from {{ ref('int_events_validated') }}
    where is_clean
    group by event_date

),

base_events_per_day as (

    select
        activity_date as event_date,
        sum(count_events) as clean_events,
        sum(hash(user_id)::hugeint * count_events) as user_checksum,
        sum(count_purchase_lines) as purchase_lines,
        {{ sum_exactly('sum_purchase_amount') }} as purchase_amount,
        sum(count_refunds) as refunds,
        {{ sum_exactly('sum_refund_amount') }} as refund_amount
    from {{ ref('int_events_aggregated_to_user_days') }}
    group by activity_date

),

days_compared as (

    select
        coalesce(
            clean_events_per_day.event_date, base_events_per_day.event_date
        ) as event_date,
        coalesce(clean_events_per_day.clean_events, 0) as clean_events,
        coalesce(base_events_per_day.clean_events, 0) as base_events,
        coalesce(clean_events_per_day.user_checksum, 0)
        = coalesce(base_events_per_day.user_checksum, 0) as same_users,
        coalesce(clean_events_per_day.purchase_lines, 0)
        = coalesce(base_events_per_day.purchase_lines, 0)
        and coalesce(clean_events_per_day.refunds, 0)
        = coalesce(base_events_per_day.refunds, 0) as same_lines,
        abs(
            coalesce(clean_events_per_day.purchase_amount, 0)
            - coalesce(base_events_per_day.purchase_amount, 0)
        ) <= 1e-6
        and abs(
            coalesce(clean_events_per_day.refund_amount, 0)
            - coalesce(base_events_per_day.refund_amount, 0)
        ) <= 1e-6 as same_amounts
    from clean_events_per_day
    full outer join base_events_per_day
        on clean_events_per_day.event_date = base_events_per_day.event_date

)

select * from days_compared
where
    clean_events != base_events
    or not same_users
    or not same_lines
    or not same_amounts
