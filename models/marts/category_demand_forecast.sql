{#-
    One row per forecast as_of, category, region and channel: the spend expected over
    the horizon after as_of, from the users scored at as_of, and once the horizon has
    passed, what was actually spent. A user's predicted spend is spread over
    categories and channels by the user's purchase mix of the
    var('demand_share_lookback_days') days before as_of, smoothed towards the shop's
    mix: the user's mix weighs n / (n + a) for n purchase lines and a =
    var('demand_share_smoothing_purchases'); a user who bought nothing recently gets
    the shop's mix. Forecast dates: this build's as_of and the latest
    var('demand_backtest_as_ofs') earlier as_of of the score history whose horizon
    has passed (as_of + horizon_days <= this build's as_of), each recomputed from its
    scores (the latest model's at that as_of) and the events before it. Actuals are
    net spend (purchases less refunds) dated in [as_of, as_of + horizon_days).
-#}
{%- set lookback_days = var('demand_share_lookback_days') | int -%}
{%- set smoothing = var('demand_share_smoothing_purchases') | float -%}

with

purchasing_power_score_history as (

    select
        user_id,
        as_of,
        horizon_days,
        model_version,
        predicted_spend,
        scored_at
    from {{ ref('purchasing_power_score_history') }}

),

int_cutoffs_derived as (

    select as_of_date
    from {{ ref('int_cutoffs_derived') }}
    where is_scoring_cutoff

),

int_events_validated as (

    select
        user_id,
        event_date,
        event_type,
        coalesce(category, 'unknown') as category,
        coalesce(channel, 'unknown') as channel,
        amount,
        case event_type when 'purchase' then amount else -amount end as signed_amount
    from {{ ref('int_events_validated') }}
    where is_clean and event_type in ('purchase', 'refund')

),

stg_raw__users as (

    select
        user_id,
        region
    from {{ ref('stg_raw__users') }}

),

user_regions_picked as (

    select
        user_id,
        coalesce(any_value(region), 'unknown') as region
    from stg_raw__users
    group by user_id

),

forecast_models_picked as (

    -- the latest model that scored each as_of
    select
        purchasing_power_score_history.as_of,
        any_value(purchasing_power_score_history.horizon_days) as horizon_days,
        arg_max(
            purchasing_power_score_history.model_version,
            purchasing_power_score_history.scored_at
        ) as model_version,
        int_cutoffs_derived.as_of_date as build_as_of
    from purchasing_power_score_history
    cross join int_cutoffs_derived
    where purchasing_power_score_history.as_of <= int_cutoffs_derived.as_of_date
    group by purchasing_power_score_history.as_of, int_cutoffs_derived.as_of_date

),

forecast_dates_listed as (

    select
        as_of,
        horizon_days,
        model_version,
        as_of = build_as_of as is_current,
        as_of + horizon_days <= build_as_of as is_horizon_complete
    from forecast_models_picked
    where as_of = build_as_of or as_of + horizon_days <= build_as_of
    qualify
        as_of = build_as_of
        or row_number() over (
            partition by as_of = build_as_of order by as_of desc
        ) <= {{ var('demand_backtest_as_ofs') | int }}

),

scores_forecast as (

    select
        purchasing_power_score_history.user_id,
        forecast_dates_listed.as_of,
        purchasing_power_score_history.predicted_spend,
        coalesce(user_regions_picked.region, 'unknown') as region
    from purchasing_power_score_history
    inner join forecast_dates_listed
        on
            purchasing_power_score_history.as_of = forecast_dates_listed.as_of
            and purchasing_power_score_history.model_version = forecast_dates_listed.model_version
    left join user_regions_picked
        on purchasing_power_score_history.user_id = user_regions_picked.user_id

),

recent_purchases_mixed as (

    -- each user's purchases by category and channel in the lookback before each as_of
    select
        forecast_dates_listed.as_of,
        int_events_validated.user_id,
        int_events_validated.category,
        int_events_validated.channel,
        count(*) as count_purchase_lines,
        {{ sum_exactly('int_events_validated.amount') }} as purchase_amount
    from int_events_validated
    inner join forecast_dates_listed
        on
            int_events_validated.event_date < forecast_dates_listed.as_of
            and int_events_validated.event_date
            >= cast(forecast_dates_listed.as_of - {{ lookback_days }} as date)
    where int_events_validated.event_type = 'purchase'
    group by all

),

user_mixes_weighted as (

    select
        as_of,
        user_id,
        category,
        channel,
        purchase_amount / sum(purchase_amount) over (partition by as_of, user_id)
            as user_share,
        sum(count_purchase_lines) over (partition by as_of, user_id)
        / (sum(count_purchase_lines) over (partition by as_of, user_id) + {{ smoothing }})
            as user_weight
    from recent_purchases_mixed

),

shop_mixes_measured as (

    select
        as_of,
        category,
        channel,
        sum(purchase_amount) / sum(sum(purchase_amount)) over (partition by as_of)
            as shop_share
    from recent_purchases_mixed
    group by as_of, category, channel

),

user_weights_picked as (

    select distinct
        as_of,
        user_id,
        user_weight
    from user_mixes_weighted

),

personal_spend_spread as (

    -- the part of predicted spend that follows the user's own mix
    select
        scores_forecast.as_of,
        user_mixes_weighted.category,
        scores_forecast.region,
        user_mixes_weighted.channel,
        sum(
            scores_forecast.predicted_spend
            * user_mixes_weighted.user_weight
            * user_mixes_weighted.user_share
        ) as expected_spend
    from scores_forecast
    inner join user_mixes_weighted
        on
            scores_forecast.as_of = user_mixes_weighted.as_of
            and scores_forecast.user_id = user_mixes_weighted.user_id
    group by all

),

shop_spend_pooled as (

    -- the rest, pooled per region: it follows the shop's mix
    select
        scores_forecast.as_of,
        scores_forecast.region,
        sum(
            scores_forecast.predicted_spend * (1 - coalesce(user_weights_picked.user_weight, 0))
        ) as pooled_spend
    from scores_forecast
    left join user_weights_picked
        on
            scores_forecast.as_of = user_weights_picked.as_of
            and scores_forecast.user_id = user_weights_picked.user_id
    group by all

),

shop_spend_spread as (

    select
        shop_spend_pooled.as_of,
        shop_mixes_measured.category,
        shop_spend_pooled.region,
        shop_mixes_measured.channel,
        shop_spend_pooled.pooled_spend * shop_mixes_measured.shop_share as expected_spend
    from shop_spend_pooled
    inner join shop_mixes_measured
        on shop_spend_pooled.as_of = shop_mixes_measured.as_of

),

expected_spend_stacked as (

    select * from personal_spend_spread
    union all
    select * from shop_spend_spread

),

expected_spend_summed as (

    select
        as_of,
        category,
        region,
        channel,
        sum(expected_spend) as expected_spend
    from expected_spend_stacked
    group by all

),

actual_spend_summed as (

    -- net spend in [as_of, as_of + horizon_days): by the users scored at as_of (what
    -- the forecast covers) and by everyone (new customers too)
    select
        forecast_dates_listed.as_of,
        int_events_validated.category,
        coalesce(user_regions_picked.region, 'unknown') as region,
        int_events_validated.channel,
        {{ sum_exactly(
            "case when scores_forecast.user_id is not null then int_events_validated.signed_amount end"
        ) }} as actual_spend,
        {{ sum_exactly('int_events_validated.signed_amount') }} as actual_spend_all_users
    from int_events_validated
    inner join forecast_dates_listed
        on
            forecast_dates_listed.is_horizon_complete
            and int_events_validated.event_date >= forecast_dates_listed.as_of
            and int_events_validated.event_date
            < cast(forecast_dates_listed.as_of + forecast_dates_listed.horizon_days as date)
    left join scores_forecast
        on
            forecast_dates_listed.as_of = scores_forecast.as_of
            and int_events_validated.user_id = scores_forecast.user_id
    left join user_regions_picked
        on int_events_validated.user_id = user_regions_picked.user_id
    group by all

),

forecasts_checked as (

    select
        forecast_dates_listed.as_of,
        forecast_dates_listed.horizon_days,
        forecast_dates_listed.model_version,
        forecast_dates_listed.is_current,
        forecast_dates_listed.is_horizon_complete,
        coalesce(expected_spend_summed.category, actual_spend_summed.category) as category,
        coalesce(expected_spend_summed.region, actual_spend_summed.region) as region,
        coalesce(expected_spend_summed.channel, actual_spend_summed.channel) as channel,
        -- in cents: a forecast is no more precise, and sums of shares carry float noise
        round(coalesce(expected_spend_summed.expected_spend, 0), 2) as expected_spend,
        case
            when forecast_dates_listed.is_horizon_complete
                then coalesce(actual_spend_summed.actual_spend, 0)
        end as actual_spend,
        case
            when forecast_dates_listed.is_horizon_complete
                then coalesce(actual_spend_summed.actual_spend_all_users, 0)
        end as actual_spend_all_users
    from expected_spend_summed
    full outer join actual_spend_summed
        on
            expected_spend_summed.as_of = actual_spend_summed.as_of
            and expected_spend_summed.category = actual_spend_summed.category
            and expected_spend_summed.region = actual_spend_summed.region
            and expected_spend_summed.channel = actual_spend_summed.channel
    inner join forecast_dates_listed
        on
            coalesce(expected_spend_summed.as_of, actual_spend_summed.as_of)
            = forecast_dates_listed.as_of

)

select * from forecasts_checked
