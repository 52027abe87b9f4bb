{#-
    One row per cutoff date: the scoring cutoff (as_of) and the training cutoffs
    before it whose labels are complete (cutoff + horizon <= as_of). Training
    cutoffs lie on a fixed grid, var('cutoff_anchor_date') plus whole multiples of
    var('cutoff_spacing_days'): the latest grid day at or before as_of - horizon
    and the ones before it, each with var('min_history_days') of history. A new
    day of events moves the scoring cutoff only, so an incremental rerun keeps
    the training cutoffs' features (int_user_activity_windowed).

    label_horizon_days is the label window the training cutoffs are placed for:
    horizon_days where the history holds two grid cutoffs with complete labels that
    long, else the longest window that leaves two (at least
    var('min_label_horizon_days')): the model then learns that window and its scores
    are extended to the horizon (python/purchasing_power/extension.py). Below that,
    no training cutoff is kept and the BTYD fallback scores.
-#}
{%- set as_of = var('as_of') -%}
{%- set horizon_days = var('horizon_days') | int -%}
{%- set spacing_days = var('cutoff_spacing_days') | int -%}

with

int_events_validated as (

    select event_date
    from {{ ref('int_events_validated') }}
    where is_clean

),

event_dates_bounded as (

    select
        min(event_date) as first_event_date,
        max(event_date) as last_event_date
    from int_events_validated

),

as_of_resolved as (

    select
        first_event_date,
        -- the first grid day with min_history_days of history before it (a floored modulo)
        cast(
            first_event_date
            + cast(
                {{ var('min_history_days') | int }}
                + (
                    (
                        {{ spacing_days }}
                        - date_diff(
                            'day',
                            cast('{{ var('cutoff_anchor_date') }}' as date),
                            cast(first_event_date + {{ var('min_history_days') | int }} as date)
                        ) % {{ spacing_days }}
                    ) % {{ spacing_days }}
                    + {{ spacing_days }}
                ) % {{ spacing_days }}
                as integer
            )
            as date
        ) as first_grid_cutoff_date,
        {% if as_of -%}
            cast('{{ as_of }}' as date)
        {%- else -%}
            cast(last_event_date + 1 as date)
        {%- endif %} as as_of_date
    from event_dates_bounded

),

label_horizon_chosen as (

    -- the horizon, or the longest window that leaves two grid cutoffs with history
    select
        *,
        case
            when
                date_diff('day', first_grid_cutoff_date, as_of_date) - {{ spacing_days }}
                >= {{ horizon_days }}
                then {{ horizon_days }}
            when
                date_diff('day', first_grid_cutoff_date, as_of_date) - {{ spacing_days }}
                >= {{ var('min_label_horizon_days') | int }}
                then cast(
                    date_diff('day', first_grid_cutoff_date, as_of_date) - {{ spacing_days }}
                    as integer
                )
            else {{ horizon_days }}
        end as label_horizon_days
    from as_of_resolved

),

latest_training_cutoff_placed as (

    -- the last grid day at or before as_of - label horizon (a floored modulo: the
    -- anchor may come after it)
    select
        *,
        cast(
            as_of_date
            - cast(
                label_horizon_days
                + (
                    date_diff(
                        'day',
                        cast('{{ var('cutoff_anchor_date') }}' as date),
                        cast(as_of_date - to_days(label_horizon_days) as date)
                    ) % {{ spacing_days }} + {{ spacing_days }}
                ) % {{ spacing_days }}
                as integer
            )
            as date
        ) as latest_training_cutoff_date
    from label_horizon_chosen

),

training_cutoffs_listed as (

    select
        latest_training_cutoff_placed.as_of_date,
        cast(
            latest_training_cutoff_placed.latest_training_cutoff_date
            - cast(cutoff_indexes.cutoff_index * {{ spacing_days }} as integer)
            as date
        ) as cutoff_date,
        latest_training_cutoff_placed.first_event_date,
        latest_training_cutoff_placed.label_horizon_days
    from latest_training_cutoff_placed
    cross join range(0, {{ var('training_cutoffs') | int }}) as cutoff_indexes (cutoff_index)

),

training_cutoffs_kept as (

    select
        cutoff_date,
        as_of_date,
        false as is_scoring_cutoff,
        true as is_training_cutoff,
        label_horizon_days
    from training_cutoffs_listed
    where cutoff_date >= cast(first_event_date + {{ var('min_history_days') | int }} as date)

),

cutoffs_combined as (

    select
        as_of_date as cutoff_date,
        as_of_date,
        true as is_scoring_cutoff,
        false as is_training_cutoff,
        label_horizon_days
    from label_horizon_chosen

    union all

    select * from training_cutoffs_kept

),

cutoffs_described as (

    select
        cutoff_date,
        as_of_date,
        {{ horizon_days }} as horizon_days,
        label_horizon_days,
        is_scoring_cutoff,
        is_training_cutoff,
        is_training_cutoff
        and cutoff_date = max(cutoff_date) filter (where is_training_cutoff) over ()
            as is_validation_cutoff
    from cutoffs_combined

)

select * from cutoffs_described
