{#-
    How widely the user shops: distinct categories, the entropy of activity
    across them and the share of the top one, over all categorised events before
    the cutoff. One row per user_id and cutoff_date with such events.
-#}
with

int_events_aggregated_to_user_category_days as (

    select
        user_id,
        category,
        activity_date,
        count_events
    from {{ ref('int_events_aggregated_to_user_category_days') }}

),

int_users_joined_to_cutoffs as (

    select
        user_id,
        cutoff_date
    from {{ ref('int_users_joined_to_cutoffs') }}

),

category_totals_accumulated as (

    select
        user_id,
        category,
        activity_date,
        sum(count_events) over (
            partition by user_id, category
            order by activity_date
            rows between unbounded preceding and current row
        ) as cumulative_count_events
    from int_events_aggregated_to_user_category_days

),

categories_first_seen as (

    select
        user_id,
        category,
        min(activity_date) as first_seen_date
    from int_events_aggregated_to_user_category_days
    group by user_id, category

),

categories_at_cutoffs as (

    select
        int_users_joined_to_cutoffs.user_id,
        int_users_joined_to_cutoffs.cutoff_date,
        categories_first_seen.category
    from int_users_joined_to_cutoffs
    inner join categories_first_seen
        on
            int_users_joined_to_cutoffs.user_id = categories_first_seen.user_id
            and int_users_joined_to_cutoffs.cutoff_date > categories_first_seen.first_seen_date

),

category_counts_at_cutoffs as (

    select
        categories_at_cutoffs.user_id,
        categories_at_cutoffs.cutoff_date,
        categories_at_cutoffs.category,
        category_totals_accumulated.cumulative_count_events as count_events
    from categories_at_cutoffs
    asof inner join category_totals_accumulated
        on
            categories_at_cutoffs.user_id = category_totals_accumulated.user_id
            and categories_at_cutoffs.category = category_totals_accumulated.category
            and categories_at_cutoffs.cutoff_date > category_totals_accumulated.activity_date

),

breadth_summarized as (

    -- entropy = ln(total) - sum(count * ln(count)) / total
    select
        user_id,
        cutoff_date,
        count(*) as count_distinct_categories_lifetime,
        ln(sum(count_events))
        - {{ sum_exactly('count_events * ln(count_events)', scale=6) }} / sum(count_events)
            as category_entropy_lifetime,
        max(count_events) / sum(count_events) as share_top_category_lifetime
    from category_counts_at_cutoffs
    group by user_id, cutoff_date

)

select * from breadth_summarized
