{#-
    Every clean event's session: its session key and when the session started, and
    for purchase lines when their order started. A shop's own session_id wins;
    events without one are cut into sessions at var('session_gap_minutes') of
    inactivity, per user (a gap of exactly that long stays in the session). An
    inferred session's key is its user and start time, so it does not depend on the
    sessions before it.

    Narrow on purpose: the event, its user and time, and the session and order
    facts. The user-day base reads everything else from the clean events. Writing a
    copy of every clean event's columns here was about half of this model's time
    (bench/README.md).

    Written to stream at any scale: the clean events are read afresh by each step
    (`as not materialized`: a shared copy of every event spilled 32 GB at 125M
    events), session and order starts come from narrow aggregates joined back, and
    an inferred session's start comes from the same window that numbers it. A rerun
    keeps one copy of the rows it rebuilds, no more than it writes.

    Incremental: a rerun rebuilds each user with a validated row (clean or rejected)
    from a run of int_events_validated that no row here has seen (new events, late
    ones, copies and changed verdicts alike), but only from where those rows can
    change anything: the start of the user's last inferred session before the
    earliest of them (every event before it keeps its session), or the user's last
    event before it when the user has no inferred session there. The rebuilt events
    replace their rows (delete+insert on event_id); a shop session's or an order's
    start is taken over all its events, the earlier ones included. Rows of events no
    longer clean go (the post-hook delete_rows_with_keys_in). Each rebuilt row carries
    the latest validated_at of its user's rows, and built_at, when the run that wrote it
    started (what the key guard's tests read: dbt_project.yml). A change to
    var('session_gap_minutes') or to this logic needs --full-refresh, and so does a table
    built before is_session_inferred or built_at (the build says so: require_built_columns).
-#}
{{ require_built_columns(['is_session_inferred', 'built_at']) }}

with

{% if is_incremental() -%}
users_to_rebuild as materialized (

    -- the earliest time of a row from an unseen run (none has one: after every event)
    select
        user_id,
        coalesce(min(event_at), timestamp 'infinity') as changed_from
    from (
        {{ keys_from_unseen_runs(
            ref('int_events_validated'), 'validated_at', 'user_id, event_at',
            where='user_id is not null'
        ) }}
    )
    group by user_id

),

rebuild_points as materialized (

    -- from the start of the user's last inferred session before the change, else from
    -- the user's last event before it; a user with no clean event before it is rebuilt
    -- whole (no row here)
    select
        built.user_id,
        coalesce(
            max_by(built.session_started_at, built.event_at)
                filter (where built.is_session_inferred),
            max(built.event_at)
        ) as rebuilt_from
    from {{ this }} as built
    inner join users_to_rebuild
        on built.user_id = users_to_rebuild.user_id
    where built.event_at < users_to_rebuild.changed_from
    group by built.user_id

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

{# a rerun keeps its rows from the rebuild points on once, for the four steps that read
   them: they are the rows it writes anyway, and each read of the clean events afresh
   scans all of them (large bench: 11.9 s against 20.2 s); a full build reads them afresh -#}
events_rebuilt as {{ 'materialized' if is_incremental() else 'not materialized' }} (

    select int_events_validated.*
    from int_events_validated
    {% if is_incremental() -%}
        left join rebuild_points
            on int_events_validated.user_id = rebuild_points.user_id
        where
            rebuild_points.rebuilt_from is null
            or int_events_validated.event_at >= rebuild_points.rebuilt_from
    {%- endif %}

),

shop_sessions_started as (

    -- over every event of the session, those before the rebuilt ones too
    select
        int_events_validated.user_id,
        int_events_validated.session_id,
        min(int_events_validated.event_at) as session_started_at
    from int_events_validated
    {% if is_incremental() -%}
        semi join events_rebuilt
            on
                int_events_validated.user_id = events_rebuilt.user_id
                and int_events_validated.session_id = events_rebuilt.session_id
    {%- endif %}
    where int_events_validated.session_id is not null
    group by int_events_validated.user_id, int_events_validated.session_id

),

events_with_session_id as (

    select
        events_rebuilt.*,
        events_rebuilt.user_id || '|' || events_rebuilt.session_id as session_key,
        shop_sessions_started.session_started_at,
        false as is_session_inferred
    from events_rebuilt
    inner join shop_sessions_started
        on
            events_rebuilt.user_id = shop_sessions_started.user_id
            and events_rebuilt.session_id = shop_sessions_started.session_id

),

inferred_session_starts_marked as (

    select
        *,
        coalesce(
            event_at - lag(event_at) over (partition by user_id order by event_at, event_id)
            > to_minutes({{ var('session_gap_minutes') }}),
            true
        ) as starts_inferred_session
    from events_rebuilt
    where session_id is null

),

inferred_sessions_started as (

    -- in time order the latest start so far is the start of the event's own session
    select
        * exclude (starts_inferred_session),
        max(case when starts_inferred_session then event_at end) over (
            partition by user_id
            order by event_at, event_id
            rows between unbounded preceding and current row
        ) as session_started_at
    from inferred_session_starts_marked

),

inferred_sessions_keyed as (

    -- keyed by user and start, so a session's key does not depend on the ones before it
    select
        *,
        user_id || '|~' || cast(session_started_at as varchar) as session_key,
        true as is_session_inferred
    from inferred_sessions_started

),

sessions_combined as (

    select * from events_with_session_id
    union all by name
    select * from inferred_sessions_keyed

),

orders_started as (

    -- purchase lines without an order_id are orders of their own; over every line of
    -- the order, those before the rebuilt ones too
    select
        int_events_validated.user_id,
        coalesce(int_events_validated.order_id, int_events_validated.event_id) as order_key,
        min(int_events_validated.event_date) as order_started_date
    from int_events_validated
    {% if is_incremental() -%}
        semi join events_rebuilt
            on
                int_events_validated.user_id = events_rebuilt.user_id
                and coalesce(int_events_validated.order_id, int_events_validated.event_id)
                = coalesce(events_rebuilt.order_id, events_rebuilt.event_id)
                and events_rebuilt.event_type = 'purchase'
    {%- endif %}
    where int_events_validated.event_type = 'purchase'
    group by
        int_events_validated.user_id,
        coalesce(int_events_validated.order_id, int_events_validated.event_id)

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
        orders_attached.is_session_inferred,
        orders_attached.order_started_date,
        users_last_validated.validated_at,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp) as built_at
    from orders_attached
    inner join users_last_validated
        on orders_attached.user_id = users_last_validated.user_id

)

select * from sessions_listed
