{#-
    How widely the user shops: distinct categories, the entropy of activity across
    them and the share of the top one, over all categorised events before the
    cutoff. One row per user_id and cutoff_date with such events.
-#}
with

int_user_categories_counted_at_cutoffs as (

    select * from {{ ref('int_user_categories_counted_at_cutoffs') }}

),

-- incremental: a cutoff is built again when its counts were (macros/select_cutoffs_to_build.sql)
{{ select_cutoffs_to_build(at_cutoff={'int_user_categories_counted_at_cutoffs': 'built_from'}) }}

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
    from int_user_categories_counted_at_cutoffs
    where cutoff_date in (select cutoffs_to_build.cutoff_date from cutoffs_to_build)
    group by user_id, cutoff_date

),

fingerprint_attached as (

    {{ attach_built_from('breadth_summarized') }}

)

select * from fingerprint_attached
