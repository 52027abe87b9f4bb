{#-
    Every clean event's session: its session key and when the session started, and
    for purchase lines when their order started. A shop's own session_id wins;
    events without one are cut into sessions at var('session_gap_minutes') of
    inactivity, per user (a gap of exactly that long stays in the session).

    Narrow on purpose: the event, its user and time, and the session and order
    facts. The user-day base reads everything else from the clean events. Writing a
    copy of every clean event's columns here was about half of this model's time
    (bench/README.md).

    Written to stream at any scale: the clean events are read afresh by each step
    (`as not materialized`: a shared copy of every event spilled 32 GB at 125M
    events), session and order starts come from narrow aggregates joined back, and
    an inferred session's start comes from the same window that numbers it.

    Incremental: sessions, orders and inferred-session numbers are per user, so a
    rerun rebuilds whole users, those with a validated row (clean or rejected) from a
    run of int_events_validated that no row here has seen: new events, late ones,
    copies and changed verdicts alike (delete+insert on user_id). Each row carries the
    latest validated_at of its user's rows. A user left with
    no clean event loses its rows (the post-hook delete_rows_without_source).
    A change to var('session_gap_minutes') or to this logic needs --full-refresh.
-#}
with

{% if is_incremental() -%}
users_to_rebuild as materialized (

    {{ keys_from_unseen_runs(
        ref('int_events_validated'), 'validated_at', 'user_id', where='user_id is not null'
    ) }}

),

{% endif -%}
int_events_validated as not materialized (

    select
        event_id,
        user_id,
        event_at,
        event_date,
        event_type,
        order_id,
        session_id
    from {{ ref('int_events_validated') }}
    where is_clean
    {% if is_incremental() -%}
        and user_id in (select user_id from users_to_rebuild)
    {%- endif %}

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
        *,
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
        * exclude (starts_inferred_session),
        user_id || '|~' || sum(cast(starts_inferred_session as integer)) over user_events
            as session_key,
        max(case when starts_inferred_session then event_at end) over user_events
            as session_started_at
    from inferred_session_starts_marked
    window user_events as (
        partition by user_id
        order by event_at, event_id
        rows between unbounded preceding and current row
    )

),

sessions_combined as (

    select * from events_with_session_id
    union all by name
    select * from inferred_sessions_numbered

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

),

-- the latest run that validated any row of the user, clean or rejected
users_last_validated as (

    {{ latest_run_per_key(
        ref('int_events_validated'), 'validated_at', 'user_id', 'users_to_rebuild'
    ) }}

),

sessions_listed as (

    select
        orders_attached.event_id,
        orders_attached.user_id,
        orders_attached.event_at,
        orders_attached.event_date,
        orders_attached.session_key,
        orders_attached.session_started_at,
        orders_attached.order_started_date,
        users_last_validated.validated_at
    from orders_attached
    inner join users_last_validated
        on orders_attached.user_id = users_last_validated.user_id

)

select * from sessions_listed
