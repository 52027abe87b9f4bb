{#-
    Clean events with a session key. A shop's own session_id wins; events without
    one are cut into sessions at var('session_gap_minutes') of inactivity, per user
    (a gap of exactly that long stays in the session). Each event also carries
    when its session started and, for purchase lines, when its order started.

    Written to stream at any scale: the clean events are read afresh by each step
    (`as not materialized`: a shared copy of every wide row spilled 32 GB at 125M
    events), session and order starts come from narrow aggregates joined back, and
    inferred sessions are cut and numbered over three columns (user, time, event_id)
    and joined back to the wide rows by event_id, unique among clean events: the
    windows sort a narrow row, not every column of every event without a session_id.
-#}
with

int_events_validated as not materialized (

    select
        event_id,
        user_id,
        event_at,
        event_date,
        event_type,
        item_id,
        category,
        price,
        quantity,
        amount,
        order_id,
        session_id,
        rating,
        review_text,
        channel
    from {{ ref('int_events_validated') }}
    where is_clean

),

shop_sessions_started as (

    select
        user_id,
        session_id,
        min(event_at) as session_started_at
    from int_events_validated
    where session_id is not null
    group by user_id, session_id

),

events_with_session_id as (

    select
        int_events_validated.*,
        int_events_validated.user_id || '|' || int_events_validated.session_id as session_key,
        shop_sessions_started.session_started_at
    from int_events_validated
    inner join shop_sessions_started
        on
            int_events_validated.user_id = shop_sessions_started.user_id
            and int_events_validated.session_id = shop_sessions_started.session_id

),

inferred_session_starts_marked as (

    select
        user_id,
        event_id,
        event_at,
        coalesce(
            event_at - lag(event_at) over (partition by user_id order by event_at, event_id)
            > to_minutes({{ var('session_gap_minutes') }}),
            true
        ) as starts_inferred_session
    from int_events_validated
    where session_id is null

),

inferred_sessions_numbered as (

    -- in time order the latest start so far is the start of the event's own session
    select
        user_id,
        event_id,
        sum(cast(starts_inferred_session as integer)) over user_events as session_number,
        max(case when starts_inferred_session then event_at end) over user_events
            as session_started_at
    from inferred_session_starts_marked
    window user_events as (
        partition by user_id
        order by event_at, event_id
        rows between unbounded preceding and current row
    )

),

events_with_inferred_session as (

    select
        int_events_validated.*,
        int_events_validated.user_id || '|~' || inferred_sessions_numbered.session_number
            as session_key,
        inferred_sessions_numbered.session_started_at
    from int_events_validated
    inner join inferred_sessions_numbered
        on
            int_events_validated.user_id = inferred_sessions_numbered.user_id
            and int_events_validated.event_id = inferred_sessions_numbered.event_id
    where int_events_validated.session_id is null

),

sessions_combined as (

    select * from events_with_session_id
    union all by name
    select * from events_with_inferred_session

),

orders_started as (

    -- purchase lines without an order_id are orders of their own
    select
        user_id,
        coalesce(order_id, event_id) as order_key,
        min(event_date) as order_started_date
    from int_events_validated
    where event_type = 'purchase'
    group by user_id, coalesce(order_id, event_id)

),

orders_attached as (

    -- session facts count on the day a session starts and order facts on the day an
    -- order starts, so an incremental rebuild of later days can tell what is theirs
    select
        sessions_combined.*,
        orders_started.order_started_date
    from sessions_combined
    left join orders_started
        on
            sessions_combined.event_type = 'purchase'
            and sessions_combined.user_id = orders_started.user_id
            and coalesce(sessions_combined.order_id, sessions_combined.event_id)
            = orders_started.order_key

)

select * from orders_attached
