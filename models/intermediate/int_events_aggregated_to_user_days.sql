{#-
    The compact base of every point-in-time feature: one row per user and day with
    activity, holding only additive measures. Sessions and orders count on the day
    they start; their minutes and amounts on the day they happen, so that nothing
    after a day reaches it. Each purchase line is priced against its
    category's reference price of that month (from earlier purchases only) and
    each review scored with the sentiment lexicon seed.

    Incremental: a rerun rebuilds only the days from the last built day minus
    var('user_days_lookback_days') (late-arriving events, and back to the start of
    any session or order reaching into them), replacing those days whole; a day
    left with no clean event (as_of moved back before it) loses its rows (post-hook
    delete_rows_without_source); events arriving older than that need
    `dbt build --full-refresh`.
-#}
{%- if is_incremental() -%}
    {#- From the last built day minus the lookback, stretched back to the start of any
        session or order that reaches into it, so a late event joining an earlier
        session rebuilds that session's day too. -#}
    {%- set rebuild_from -%}
        (
            select least(min(cast(session_started_at as date)), min(order_started_date))
            from {{ ref('int_events_sessionized') }}
            where event_date >= (
                select max(activity_date) - {{ var('user_days_lookback_days') | int }}
                from {{ this }}
            )
        )
    {%- endset -%}
{%- endif %}

with

int_events_validated as not materialized (

    -- read afresh by each step below, each taking only its columns and rows: a shared
    -- copy of every event spills at scale
    select
        event_id,
        user_id,
        event_at,
        event_date,
        event_type,
        category,
        price,
        amount,
        quantity,
        rating,
        review_text,
        coalesce(order_id, event_id) as order_key
    from {{ ref('int_events_validated') }}
    where is_clean
    {% if is_incremental() -%}
        -- a session or order starting on a rebuilt day has all its events there too
        and event_date >= {{ rebuild_from }}
    {%- endif %}

),

int_events_sessionized as not materialized (

    select
        event_id,
        user_id,
        event_at,
        event_date,
        session_key,
        session_started_at,
        order_started_date
    from {{ ref('int_events_sessionized') }}
    {% if is_incremental() -%}
        where event_date >= {{ rebuild_from }}
    {%- endif %}

),

int_category_months_priced as (

    select
        category,
        month_start_date,
        reference_unit_price,
        is_premium_category
    from {{ ref('int_category_months_priced') }}

),

sentiment_lexicon as (

    select
        term,
        sentiment_weight
    from {{ ref('sentiment_lexicon') }}

),

purchase_lines_priced as (

    select
        int_events_validated.user_id,
        int_events_validated.event_date as activity_date,
        int_events_validated.price / int_category_months_priced.reference_unit_price
            as relative_unit_price,
        int_category_months_priced.is_premium_category
    from int_events_validated
    inner join int_category_months_priced
        on
            int_events_validated.category = int_category_months_priced.category
            and cast(date_trunc('month', int_events_validated.event_date) as date)
            = int_category_months_priced.month_start_date
    where
        int_events_validated.event_type = 'purchase'
        and int_events_validated.price > 0

),

purchase_prices_summarized as (

    select
        user_id,
        activity_date,
        count(*) as count_priced_purchase_lines,
        {{ sum_exactly('relative_unit_price', scale=9) }} as sum_relative_unit_price,
        count(*) filter (where relative_unit_price > 1) as count_lines_above_category_median,
        count(*) filter (where is_premium_category) as count_premium_category_lines
    from purchase_lines_priced
    group by user_id, activity_date

),

review_terms_listed as (

    select
        user_id,
        event_date as activity_date,
        unnest(regexp_split_to_array(lower(review_text), '[^a-z]+')) as term
    from int_events_validated
    where event_type = 'review' and review_text is not null

),

review_sentiment_summarized as (

    select
        review_terms_listed.user_id,
        review_terms_listed.activity_date,
        {{ sum_exactly('sentiment_lexicon.sentiment_weight') }} as sum_review_sentiment
    from review_terms_listed
    inner join sentiment_lexicon
        on review_terms_listed.term = sentiment_lexicon.term
    group by review_terms_listed.user_id, review_terms_listed.activity_date

),

session_days_bounded as (

    -- a session's time counts on each day by that day's events, so no day reads
    -- minutes that happen after it (a session can run past midnight or a cutoff)
    select
        user_id,
        session_key,
        event_date as activity_date,
        session_started_at,
        date_diff('second', min(event_at), max(event_at)) as session_seconds
    from int_events_sessionized
    group by user_id, session_key, event_date, session_started_at

),

sessions_summarized as (

    select
        user_id,
        activity_date,
        count(*) filter (where cast(session_started_at as date) = activity_date)
            as count_sessions,
        sum(session_seconds) / 60.0 as sum_session_minutes
    from session_days_bounded
    group by user_id, activity_date

),

order_days_totalled as (

    -- likewise an order's amount counts on each day by that day's lines; the order
    -- itself counts once, on the day it starts
    select
        int_events_validated.user_id,
        int_events_validated.order_key,
        int_events_validated.event_date as activity_date,
        int_events_sessionized.order_started_date,
        {{ sum_exactly('int_events_validated.amount') }} as order_amount_on_day
    from int_events_validated
    inner join int_events_sessionized
        on
            int_events_validated.user_id = int_events_sessionized.user_id
            and int_events_validated.event_id = int_events_sessionized.event_id
    where
        int_events_validated.event_type = 'purchase'
        and int_events_sessionized.order_started_date is not null
    group by
        int_events_validated.user_id,
        int_events_validated.order_key,
        int_events_validated.event_date,
        int_events_sessionized.order_started_date

),

orders_summarized as (

    select
        user_id,
        activity_date,
        count(*) filter (where order_started_date = activity_date) as count_orders,
        max(order_amount_on_day) as max_order_amount
    from order_days_totalled
    group by user_id, activity_date

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
        cast(count(*) filter (where event_type = 'purchase') > 0 as integer)
            as count_purchase_days,
        coalesce(sum(quantity) filter (where event_type = 'purchase'), 0)
            as sum_purchase_quantity,
        coalesce({{ sum_exactly("case when event_type = 'purchase' then amount end") }}, 0)
            as sum_purchase_amount,
        count(*) filter (where event_type = 'refund') as count_refunds,
        coalesce({{ sum_exactly("case when event_type = 'refund' then amount end") }}, 0)
            as sum_refund_amount,
        count(*) filter (where event_type = 'review') as count_reviews,
        count(*) filter (where event_type = 'review' and rating is not null) as count_ratings,
        coalesce(sum(rating) filter (where event_type = 'review'), 0) as sum_review_rating,
        count(*) filter (where event_type = 'review' and rating <= 2) as count_low_ratings,
        count(*) filter (where isodow(event_at) >= 6) as count_weekend_events,
        count(*) filter (where hour(event_at) >= 18) as count_evening_events
    from int_events_validated
    group by user_id, event_date

),

days_joined as (

    select
        events_summarized.*,
        coalesce(orders_summarized.count_orders, 0) as count_orders,
        orders_summarized.max_order_amount,
        coalesce(sessions_summarized.count_sessions, 0) as count_sessions,
        coalesce(sessions_summarized.sum_session_minutes, 0) as sum_session_minutes,
        coalesce(purchase_prices_summarized.count_priced_purchase_lines, 0)
            as count_priced_purchase_lines,
        coalesce(purchase_prices_summarized.sum_relative_unit_price, 0)
            as sum_relative_unit_price,
        coalesce(purchase_prices_summarized.count_lines_above_category_median, 0)
            as count_lines_above_category_median,
        coalesce(purchase_prices_summarized.count_premium_category_lines, 0)
            as count_premium_category_lines,
        coalesce(review_sentiment_summarized.sum_review_sentiment, 0) as sum_review_sentiment,
        -- the dbt run that built the day: int_user_days_accumulated rebuilds the users of
        -- days from runs it has not seen
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp) as built_at
    from events_summarized
    left join orders_summarized
        on
            events_summarized.user_id = orders_summarized.user_id
            and events_summarized.activity_date = orders_summarized.activity_date
    left join sessions_summarized
        on
            events_summarized.user_id = sessions_summarized.user_id
            and events_summarized.activity_date = sessions_summarized.activity_date
    left join purchase_prices_summarized
        on
            events_summarized.user_id = purchase_prices_summarized.user_id
            and events_summarized.activity_date = purchase_prices_summarized.activity_date
    left join review_sentiment_summarized
        on
            events_summarized.user_id = review_sentiment_summarized.user_id
            and events_summarized.activity_date = review_sentiment_summarized.activity_date

)

select * from days_joined
