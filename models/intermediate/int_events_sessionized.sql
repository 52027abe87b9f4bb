{#-
    Clean events with a session key. A shop's own session_id wins; events without
    one are cut into sessions at var('session_gap_minutes') of inactivity, per user.
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

)

select * from session_keys_assigned
