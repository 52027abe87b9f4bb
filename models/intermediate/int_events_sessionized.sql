{#-
    Clean events with a session key. A shop's own session_id wins; events without
    one are cut into sessions at var('session_gap_minutes') of inactivity, per user
    (a gap of exactly that long stays in the session). Each event also carries
    when its session started and, for purchase lines, when its order started.
-#}
with

int_events_validated as (

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

session_starts_marked as (

    select
        *,
        session_id is null
        and coalesce(
            event_at - lag(event_at) over (
                partition by user_id, session_id is null
                order by event_at, event_id
            ) > to_minutes({{ var('session_gap_minutes') }}),
            true
        ) as starts_inferred_session
    from int_events_validated

),

session_keys_assigned as (

    select
        * exclude (starts_inferred_session),
        case
            when session_id is not null then user_id || '|' || session_id
            else user_id || '|~' || sum(cast(starts_inferred_session as integer)) over (
                partition by user_id, session_id is null
                order by event_at, event_id
                rows between unbounded preceding and current row
            )
        end as session_key
    from session_starts_marked

),

starts_attached as (

    -- session facts count on the day a session starts and order facts on the day an
    -- order starts, so an incremental rebuild of later days can tell what is theirs
    select
        *,
        min(event_at) over (partition by session_key) as session_started_at,
        case
            when event_type = 'purchase'
                then min(event_date) over (
                    partition by user_id, event_type, coalesce(order_id, event_id)
                )
        end as order_started_date
    from session_keys_assigned

)

select * from starts_attached
