{#-
    One row per user_id, category and cutoff_date with events of the category
    before the cutoff: count_events, their number over every day strictly before
    the cutoff (user_breadth_features' input).

    Each category-day falls in the span of the first cutoff after it (the days
    before that cutoff and on or after the one before it). A category's count at
    a cutoff is the running total of its spans up to that cutoff: summing spans
    and then joining the few cutoffs by date range takes about a third of the time
    of an asof join on user and category at the large bench scale.

    Incremental by cutoff (macros/select_cutoffs_to_build.sql): a cutoff's counts
    read only the category-days before it, so its built_from hashes the days before
    it with the validated_at each carries (a day rebuilt since carries a new one).
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

-- incremental: a cutoff is built again when a category-day before it was
{{ select_cutoffs_to_build(before_cutoff={
    'int_events_aggregated_to_user_category_days': ('activity_date', 'validated_at'),
}) }}

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
        category_spans_accumulated.category,
        cutoffs_spanned.cutoff_date,
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

fingerprint_attached as (

    {{ attach_built_from('category_counts_at_cutoffs') }}

)

select * from fingerprint_attached
