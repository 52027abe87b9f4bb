{#-
    One row per user_id and training cutoff_date: the features at the cutoff and
    the labels over the horizon that follows it. Labels read only clean purchase
    and refund events in [cutoff, cutoff + label_horizon_days) (horizon_days,
    or the shorter window int_cutoffs_derived chose where the history is too
    short for it; the columns keep the horizon's name); features read only
    events strictly before the cutoff, so an event at exactly a cutoff is the
    first instant of its labels and counts once (on date-only data such as
    CDNOW, the cutoff's whole day). Net spend is floored at zero. The baselines'
    inputs ride along: the same net spend over the horizon's length before the
    cutoff, and the RFM and buy-till-you-die (btyd_*) inputs at the cutoff.

    Incremental by cutoff (macros/select_cutoffs_to_build.sql): a cutoff's built_from
    hashes user_features' built_from at the cutoff, the days within horizon_days
    of it with every validated_at their events carry (a day revalidated since
    carries a new one), horizon_days and the label window.
-#}
{%- set horizon_days = var('horizon_days') | int %}

with

user_features_fingerprinted as (

    select distinct
        cutoff_date,
        built_from
    from {{ ref('user_features') }}
    where is_training_cutoff

),

days_stamped as (

    select distinct
        event_date,
        validated_at
    from {{ ref('int_events_validated') }}
    where event_date is not null

),

label_horizons as (

    -- the label window the cutoffs are placed for: a longer history can lengthen it
    -- without moving a cutoff, and its labels must then be rebuilt
    select any_value(label_horizon_days) as label_horizon_days
    from {{ ref('int_cutoffs_derived') }}

),

cutoffs_fingerprinted as materialized (

    select
        user_features_fingerprinted.cutoff_date,
        {{ built_from(
            'any_value(user_features_fingerprinted.built_from),'
            ~ ' coalesce(sum(hash(days_stamped.event_date, days_stamped.validated_at)), 0),'
            ~ ' ' ~ horizon_days ~ ', any_value(label_horizons.label_horizon_days)'
        ) }} as built_from
    from user_features_fingerprinted
    left join days_stamped
        on
            days_stamped.event_date
            >= user_features_fingerprinted.cutoff_date - to_days({{ horizon_days }})
            and days_stamped.event_date
            <= user_features_fingerprinted.cutoff_date + to_days({{ horizon_days }})
    cross join label_horizons
    group by user_features_fingerprinted.cutoff_date

),

cutoffs_to_build as materialized (

    {{ cutoffs_to_build('cutoffs_fingerprinted') }}

),

user_features as (

    select * exclude (built_from) from {{ ref('user_features') }}
    where
        is_training_cutoff
        and cutoff_date in (select cutoffs_to_build.cutoff_date from cutoffs_to_build)

),

int_events_validated as (

    select
        user_id,
        event_at,
        event_type,
        amount
    from {{ ref('int_events_validated') }}
    where is_clean and event_type in ('purchase', 'refund')

),

int_cutoffs_derived as (

    select
        cutoff_date,
        label_horizon_days
    from {{ ref('int_cutoffs_derived') }}
    where
        is_training_cutoff
        and cutoff_date in (select cutoffs_to_build.cutoff_date from cutoffs_to_build)

),

events_around_cutoffs as (

    -- the horizon from each cutoff on (labels) and the same length before it (baseline):
    -- [cutoff - horizon, cutoff) and [cutoff, cutoff + horizon), so every event counts once
    select
        int_events_validated.user_id,
        int_cutoffs_derived.cutoff_date,
        int_events_validated.event_type,
        int_events_validated.event_at >= cast(int_cutoffs_derived.cutoff_date as timestamp)
            as is_after_cutoff,
        case
            when int_events_validated.event_type = 'purchase' then int_events_validated.amount
            else -int_events_validated.amount
        end as signed_amount
    from int_events_validated
    inner join int_cutoffs_derived
        on
            int_events_validated.event_at >= cast(
                int_cutoffs_derived.cutoff_date
                - to_days(int_cutoffs_derived.label_horizon_days) as timestamp
            )
            and int_events_validated.event_at < cast(
                int_cutoffs_derived.cutoff_date
                + to_days(int_cutoffs_derived.label_horizon_days) as timestamp
            )

),

outcomes_in_horizon as (

    select
        user_id,
        cutoff_date,
        count(*) filter (where is_after_cutoff and event_type = 'purchase') as count_purchase_lines,
        {{ sum_exactly('case when is_after_cutoff then signed_amount end') }} as net_spend,
        {{ sum_exactly('case when not is_after_cutoff then signed_amount end') }}
            as net_spend_before_cutoff
    from events_around_cutoffs
    group by user_id, cutoff_date

),

labels_attached as (

    select
        user_features.*,
        coalesce(outcomes_in_horizon.count_purchase_lines, 0) > 0
            as label_purchased_next_{{ horizon_days }}d,
        greatest(coalesce(outcomes_in_horizon.net_spend, 0), 0)
            as label_spend_next_{{ horizon_days }}d,
        greatest(coalesce(outcomes_in_horizon.net_spend_before_cutoff, 0), 0)
            as baseline_spend_last_{{ horizon_days }}d
    from user_features
    left join outcomes_in_horizon
        on
            user_features.user_id = outcomes_in_horizon.user_id
            and user_features.cutoff_date = outcomes_in_horizon.cutoff_date

),

baseline_inputs_attached as (

    -- inputs of the RFM and buy-till-you-die baselines (not model features); null for
    -- users who never bought. A purchase day is one BTYD transaction, the clock
    -- starting at the first purchase.
    select
        labels_attached.*,
        nullif(labels_attached.count_purchase_days_lifetime, 0) - 1 as btyd_frequency,
        labels_attached.days_since_first_purchase
        - labels_attached.days_since_last_purchase as btyd_recency_days,
        labels_attached.days_since_first_purchase as btyd_age_days,
        (
            labels_attached.sum_purchase_amount_lifetime
            - coalesce(labels_attached.sum_refund_amount_lifetime, 0)
        )
        / nullif(labels_attached.count_purchase_days_lifetime, 0) as btyd_monetary_value,
        labels_attached.days_since_last_purchase as rfm_recency_days,
        case
            when labels_attached.days_since_last_purchase is not null
                then labels_attached.count_purchase_days_lifetime
        end as rfm_frequency,
        case
            when labels_attached.days_since_last_purchase is not null
                then
                    labels_attached.sum_purchase_amount_lifetime
                    - coalesce(labels_attached.sum_refund_amount_lifetime, 0)
        end as rfm_monetary_value
    from labels_attached

),

fingerprint_attached as (

    {{ attach_built_from('baseline_inputs_attached') }}

)

select * from fingerprint_attached
