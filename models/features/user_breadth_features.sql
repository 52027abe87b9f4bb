{#-
    How widely the user shops: distinct categories, the entropy of activity
    across them and the share of the top one, over all categorised events before
    the cutoff. One row per user_id and cutoff_date with such events.

    Each category-day falls in the span of the first cutoff after it (the days
    before that cutoff and on or after the one before it). A category's count at
    a cutoff is the running total of its spans up to that cutoff: summing spans
    and then joining the few cutoffs by date range takes about a third of the time
    of an asof join on user and category at the large bench scale.

    Incremental by cutoff (macros/cutoffs_to_build.sql): a cutoff's counts read
    only the category-days before it, so its built_from hashes the days before it
    with the validated_at each carries (a day rebuilt since carries a new one).
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

int_cutoffs_derived as (

    select cutoff_date
    from {{ ref('int_cutoffs_derived') }}

),

days_stamped as (

    select distinct
        activity_date,
        validated_at
    from {{ ref('int_events_aggregated_to_user_category_days') }}

),

cutoffs_fingerprinted as materialized (

    select
        int_cutoffs_derived.cutoff_date,
        {{ built_from(
            'coalesce(sum(hash(days_stamped.activity_date, days_stamped.validated_at)), 0)'
        ) }} as built_from
    from int_cutoffs_derived
    left join days_stamped
        on int_cutoffs_derived.cutoff_date > days_stamped.activity_date
    group by int_cutoffs_derived.cutoff_date

),

cutoffs_to_build as materialized (

    {{ cutoffs_to_build('cutoffs_fingerprinted') }}

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
            and cutoffs_spanned.cutoff_date <= (select max(cutoff_date) from cutoffs_to_build)
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
    where cutoffs_spanned.cutoff_date in (select cutoffs_to_build.cutoff_date from cutoffs_to_build)

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

),

fingerprint_attached as (

    {{ attach_built_from('breadth_summarized') }}

)

select * from fingerprint_attached
