{#-
    One row per cutoff date: the scoring cutoff (as_of) and the training cutoffs
    before it whose labels are complete (cutoff + horizon <= as_of). Training
    cutoffs lie on a fixed grid, var('cutoff_anchor_date') plus whole multiples of
    var('cutoff_spacing_days'): the latest grid day at or before as_of - horizon
    and the ones before it, each with var('min_history_days') of history. A new
    day of events moves the scoring cutoff only, so an incremental rerun keeps
    the training cutoffs' features (int_user_activity_windowed).

    label_horizon_days is the label window the training cutoffs are placed for:
    horizon_days where the cutoffs it leaves hold a validation fold (two of them at
    least that many days apart, so that the earlier one's labels end by the later
    one: python/purchasing_power/train.py validates on such folds only), else the
    window (at least var('min_label_horizon_days')) that leaves the most folds (up to
    var('validation_folds')), the longest of those: the model then learns that window
    and its scores are extended to the horizon (python/purchasing_power/extension.py).
    Where no window leaves a fold, the BTYD fallback scores.
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

label_windows_tried as (

    -- every window from the horizon down to min_label_horizon_days, with the grid steps
    -- from the first cutoff with history to the latest one its labels allow (the last
    -- grid day at or before as_of - window, a floored modulo: the anchor may come after)
    select
        as_of_resolved.first_event_date,
        as_of_resolved.first_grid_cutoff_date,
        as_of_resolved.as_of_date,
        windows.window_days,
        floor(
            date_diff(
                'day',
                as_of_resolved.first_grid_cutoff_date,
                cast(
                    as_of_resolved.as_of_date
                    - cast(
                        windows.window_days
                        + (
                            date_diff(
                                'day',
                                cast('{{ var('cutoff_anchor_date') }}' as date),
                                cast(
                                    as_of_resolved.as_of_date - to_days(windows.window_days)
                                    as date
                                )
                            ) % {{ spacing_days }} + {{ spacing_days }}
                        ) % {{ spacing_days }}
                        as integer
                    )
                    as date
                )
            ) / {{ spacing_days }}
        ) as grid_steps
    from as_of_resolved
    cross join range(
        least({{ var('min_label_horizon_days') | int }}, {{ horizon_days }}), {{ horizon_days }} + 1
    ) as windows (window_days)

),

label_windows_counted as (

    -- the folds each window leaves: of its kept cutoffs (grid_steps + 1, at most
    -- training_cutoffs), those with an earlier one at least the window before them, at
    -- most validation_folds
    select
        *,
        least(
            {{ var('validation_folds') | int }},
            greatest(
                0,
                least(grid_steps, {{ var('training_cutoffs') | int }} - 1)
                - ceil(window_days / {{ spacing_days }}) + 1
            )
        ) as validation_folds
    from label_windows_tried

),

label_horizon_chosen as (

    -- the horizon where it leaves a fold; else the window that leaves the most folds, the
    -- longest of those; none: the horizon, and no fold (the BTYD fallback)
    select
        first_event_date,
        first_grid_cutoff_date,
        as_of_date,
        case
            when
                max(validation_folds) filter (where window_days = {{ horizon_days }}) > 0
                then {{ horizon_days }}
            when max(validation_folds) > 0
                then arg_max(window_days, validation_folds * 100000 + window_days)
            else {{ horizon_days }}
        end as label_horizon_days
    from label_windows_counted
    group by first_event_date, first_grid_cutoff_date, as_of_date

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
