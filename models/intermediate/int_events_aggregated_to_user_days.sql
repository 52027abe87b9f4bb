{#-
    The compact base of every point-in-time feature: one row per user and day with
    activity. Sessions count on the day they start.
-#}
with

int_events_sessionized as (

    select
        user_id,
        event_at,
        event_date,
        event_type,
        amount,
        quantity,
        order_id,
        event_id,
        rating,
        session_key
    from {{ ref('int_events_sessionized') }}

),

sessions_bounded as (

    select
        user_id,
        session_key,
        min(event_at) as session_started_at,
        max(event_at) as session_ended_at
    from int_events_sessionized
    group by user_id, session_key

),

sessions_summarized as (

    select
        user_id,
        cast(session_started_at as date) as activity_date,
        count(*) as count_sessions,
        sum(date_diff('second', session_started_at, session_ended_at)) / 60.0
            as sum_session_minutes
    from sessions_bounded
    group by user_id, cast(session_started_at as date)

),

orders_totalled as (

    -- purchase lines without an order_id are orders of their own
    select
        user_id,
        min(event_date) as order_date,
        sum(amount) as order_amount
    from int_events_sessionized
    where event_type = 'purchase'
    group by user_id, coalesce(order_id, event_id)

),

orders_summarized as (

    select
        user_id,
        order_date as activity_date,
        count(*) as count_orders,
        max(order_amount) as max_order_amount
    from orders_totalled
    group by user_id, order_date

),

events_summarized as (

    select
        user_id,
        event_date as activity_date,
        count(*) as count_events,
        1 as count_active_days,
        count(*) filter (where event_type = 'view') as count_views,
        count(*) filter (where event_type = 'click') as count_clicks,
        count(*) filter (where event_type = 'search') as count_searches,
        count(*) filter (where event_type = 'add_to_cart') as count_cart_adds,
        count(*) filter (where event_type = 'remove_from_cart') as count_cart_removals,
        count(*) filter (where event_type = 'purchase') as count_purchase_lines,
        cast(count(*) filter (where event_type = 'purchase') > 0 as integer) as count_purchase_days,
        coalesce(sum(quantity) filter (where event_type = 'purchase'), 0) as sum_purchase_quantity,
        coalesce(sum(amount) filter (where event_type = 'purchase'), 0) as sum_purchase_amount,
        count(*) filter (where event_type = 'refund') as count_refunds,
        coalesce(sum(amount) filter (where event_type = 'refund'), 0) as sum_refund_amount,
        count(*) filter (where event_type = 'review') as count_reviews,
        coalesce(sum(rating) filter (where event_type = 'review'), 0) as sum_review_rating
    from int_events_sessionized
    group by user_id, event_date

),

days_joined as (

    select
        events_summarized.*,
        coalesce(orders_summarized.count_orders, 0) as count_orders,
        orders_summarized.max_order_amount,
        coalesce(sessions_summarized.count_sessions, 0) as count_sessions,
        coalesce(sessions_summarized.sum_session_minutes, 0) as sum_session_minutes
    from events_summarized
    left join orders_summarized
        on
            events_summarized.user_id = orders_summarized.user_id
            and events_summarized.activity_date = orders_summarized.activity_date
    left join sessions_summarized
        on
            events_summarized.user_id = sessions_summarized.user_id
            and events_summarized.activity_date = sessions_summarized.activity_date

)

select * from days_joined
