{#-
    How widely the user shops: distinct categories, the entropy of activity
    across them and the share of the top one, over all categorised events before
    the cutoff. One row per user_id and cutoff_date with such events.

    Each category-day falls in the span of the first cutoff after it (the days
    before that cutoff and on or after the one before it). A category's count at
    a cutoff is the running total of its spans up to that cutoff: summing spans
    and then joining the few cutoffs by date range takes about a third of the time
    of an asof join on user and category at the large bench scale.
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

int_cutoffs_derived as (

    select cutoff_date
    from {{ ref('int_cutoffs_derived') }}

),

cutoffs_spanned as (

    select
        cutoff_date,
        lag(cutoff_date) over (order by cutoff_date) as span_start_date
    from int_cutoffs_derived

),

category_spans_summed as (

    select
        int_events_aggregated_to_user_category_days.user_id,
        int_events_aggregated_to_user_category_days.category,
        cutoffs_spanned.cutoff_date,
        sum(int_events_aggregated_to_user_category_days.count_events) as count_events
    from int_events_aggregated_to_user_category_days
    inner join cutoffs_spanned
        on
            int_events_aggregated_to_user_category_days.activity_date
            < cutoffs_spanned.cutoff_date
            and (
                cutoffs_spanned.span_start_date is null
                or int_events_aggregated_to_user_category_days.activity_date
                >= cutoffs_spanned.span_start_date
            )
    group by
        int_events_aggregated_to_user_category_days.user_id,
        int_events_aggregated_to_user_category_days.category,
        cutoffs_spanned.cutoff_date

),

category_spans_accumulated as (

    -- the category's count at this span's cutoff, and the cutoff of its next span
    -- with activity, from which a later count holds
    select
        user_id,
        category,
        cutoff_date,
        sum(count_events) over (
            partition by user_id, category
            order by cutoff_date
            rows between unbounded preceding and current row
        ) as cumulative_count_events,
        lead(cutoff_date) over (
            partition by user_id, category
            order by cutoff_date
        ) as superseded_at_cutoff_date
    from category_spans_summed

),

category_counts_at_cutoffs as (

    select
        category_spans_accumulated.user_id,
        cutoffs_spanned.cutoff_date,
        category_spans_accumulated.category,
        category_spans_accumulated.cumulative_count_events as count_events
    from category_spans_accumulated
    inner join cutoffs_spanned
        on
            category_spans_accumulated.cutoff_date <= cutoffs_spanned.cutoff_date
            and (
                category_spans_accumulated.superseded_at_cutoff_date is null
                or category_spans_accumulated.superseded_at_cutoff_date
                > cutoffs_spanned.cutoff_date
            )
    inner join int_users_joined_to_cutoffs
        on
            category_spans_accumulated.user_id = int_users_joined_to_cutoffs.user_id
            and cutoffs_spanned.cutoff_date = int_users_joined_to_cutoffs.cutoff_date

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
