{#-
    Reviews: how many, how the user rates, and the sentiment of the words used
    (seeds/sentiment_lexicon.csv). One row per user_id and cutoff_date.
-#}
with

int_user_activity_windowed as (

    select * from {{ ref('int_user_activity_windowed') }}
    where window_days is null

),

-- incremental: a cutoff is built again when its windows were (macros/select_cutoffs_to_build.sql)
{{ select_cutoffs_to_build(at_cutoff={'int_user_activity_windowed': 'cutoff_built_at'}) }}

reviews_summarized as (

    select
        user_id,
        cutoff_date,
        count_reviews as count_reviews_lifetime,
        sum_review_rating / nullif(count_ratings, 0) as avg_review_rating_lifetime,
        count_low_ratings / nullif(count_ratings, 0) as share_low_ratings_lifetime,
        sum_review_sentiment / nullif(count_reviews, 0) as avg_review_sentiment_lifetime
    from int_user_activity_windowed
    where cutoff_date in (select cutoffs_to_build.cutoff_date from cutoffs_to_build)

),

fingerprint_attached as (

    {{ attach_built_from('reviews_summarized') }}

)

select * from fingerprint_attached
