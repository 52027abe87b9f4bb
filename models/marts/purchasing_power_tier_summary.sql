{#-
    One row per segment (all users, each region, each main channel, each customer
    segment of customer_segments) and power tier at this build's as_of: users, their share of the segment, mean predicted
    and recent actual spend. Every tier appears in every segment, with zero users
    where none falls in it.
-#}
with

purchasing_power_scores as (

    select
        user_id,
        as_of,
        horizon_days,
        model_version,
        predicted_spend,
        purchase_probability,
        tier
    from {{ ref('purchasing_power_scores') }}

),

power_tiers as (

    select
        tier,
        tier_rank
    from {{ ref('power_tiers') }}

),

customer_segments as (

    select
        user_id,
        segment
    from {{ ref('customer_segments') }}

),

stg_raw__users as (

    select
        user_id,
        region
    from {{ ref('stg_raw__users') }}

),

int_events_validated as not materialized (

    -- read afresh by the main channel and by the recent spend, each taking only its
    -- columns and rows: a shared copy of every clean event made this model 13.9 s
    -- against 4.4 s at the large bench scale (bench/README.md)
    select
        user_id,
        event_date,
        event_type,
        amount,
        channel
    from {{ ref('int_events_validated') }}
    where is_clean

),

int_cutoffs_derived as (

    select
        as_of_date,
        horizon_days
    from {{ ref('int_cutoffs_derived') }}
    where is_scoring_cutoff

),

user_regions_picked as (

    select
        user_id,
        coalesce(any_value(region), 'unknown') as region
    from stg_raw__users
    group by user_id

),

user_channels_ranked as (

    select
        user_id,
        coalesce(channel, 'unknown') as channel,
        row_number() over (
            partition by user_id
            order by count(*) desc, coalesce(channel, 'unknown')
        ) as channel_rank
    from int_events_validated
    group by user_id, coalesce(channel, 'unknown')

),

recent_spend_summed as (

    select
        int_events_validated.user_id,
        sum(
            case int_events_validated.event_type
                when 'purchase' then int_events_validated.amount
                when 'refund' then -int_events_validated.amount
                else 0
            end
        ) as recent_spend
    from int_events_validated
    cross join int_cutoffs_derived
    where
        int_events_validated.event_date
        >= int_cutoffs_derived.as_of_date - int_cutoffs_derived.horizon_days
    group by int_events_validated.user_id

),

users_segmented as (

    select
        purchasing_power_scores.user_id,
        purchasing_power_scores.tier,
        purchasing_power_scores.predicted_spend,
        purchasing_power_scores.purchase_probability,
        coalesce(recent_spend_summed.recent_spend, 0) as recent_spend,
        coalesce(user_regions_picked.region, 'unknown') as region,
        coalesce(user_channels_ranked.channel, 'unknown') as channel,
        coalesce(customer_segments.segment, 'unknown') as customer_segment
    from purchasing_power_scores
    left join recent_spend_summed
        on purchasing_power_scores.user_id = recent_spend_summed.user_id
    left join user_regions_picked
        on purchasing_power_scores.user_id = user_regions_picked.user_id
    left join user_channels_ranked
        on
            purchasing_power_scores.user_id = user_channels_ranked.user_id
            and user_channels_ranked.channel_rank = 1
    left join customer_segments
        on purchasing_power_scores.user_id = customer_segments.user_id

),

segments_unpivoted as (

    select
        'all' as segment_type,
        'all' as segment,
        tier,
        predicted_spend,
        purchase_probability,
        recent_spend
    from users_segmented

    union all

    select
        'region' as segment_type,
        region as segment,
        tier,
        predicted_spend,
        purchase_probability,
        recent_spend
    from users_segmented

    union all

    select
        'channel' as segment_type,
        channel as segment,
        tier,
        predicted_spend,
        purchase_probability,
        recent_spend
    from users_segmented

    union all

    select
        'customer_segment' as segment_type,
        customer_segment as segment,
        tier,
        predicted_spend,
        purchase_probability,
        recent_spend
    from users_segmented

),

tiers_summarised as (

    select
        segment_type,
        segment,
        tier,
        count(*) as user_count,
        avg(predicted_spend) as mean_predicted_spend,
        avg(purchase_probability) as mean_purchase_probability,
        avg(recent_spend) as mean_recent_spend,
        sum(predicted_spend) as total_predicted_spend,
        sum(recent_spend) as total_recent_spend
    from segments_unpivoted
    group by segment_type, segment, tier

),

segments_totalled as (

    select
        segment_type,
        segment,
        count(*) as segment_user_count
    from segments_unpivoted
    group by segment_type, segment

),

scoring_run as (

    select distinct
        as_of,
        horizon_days,
        model_version
    from purchasing_power_scores

),

summary_completed as (

    select
        scoring_run.as_of,
        scoring_run.horizon_days,
        scoring_run.model_version,
        segments_totalled.segment_type,
        segments_totalled.segment,
        power_tiers.tier,
        power_tiers.tier_rank,
        coalesce(tiers_summarised.user_count, 0) as user_count,
        coalesce(tiers_summarised.user_count, 0)
        / segments_totalled.segment_user_count as user_share,
        tiers_summarised.mean_predicted_spend,
        tiers_summarised.mean_purchase_probability,
        tiers_summarised.mean_recent_spend,
        coalesce(tiers_summarised.total_predicted_spend, 0) as total_predicted_spend,
        coalesce(tiers_summarised.total_recent_spend, 0) as total_recent_spend
    from segments_totalled
    cross join power_tiers
    cross join scoring_run
    left join tiers_summarised
        on
            segments_totalled.segment_type = tiers_summarised.segment_type
            and segments_totalled.segment = tiers_summarised.segment
            and power_tiers.tier = tiers_summarised.tier

)

select * from summary_completed
