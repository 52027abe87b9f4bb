{#-
    One row per cutoff date: the scoring cutoff (as_of) and the training cutoffs
    before it whose labels are complete (cutoff + horizon <= as_of). Training
    cutoffs are spaced var('cutoff_spacing_days') apart, the latest one at
    as_of - horizon_days, and each needs var('min_history_days') of history.
-#}
{%- set as_of = var('as_of') -%}
{%- set horizon_days = var('horizon_days') | int -%}

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
        {% if as_of -%}
            cast('{{ as_of }}' as date)
        {%- else -%}
            cast(last_event_date + 1 as date)
        {%- endif %} as as_of_date
    from event_dates_bounded

),

training_cutoffs_listed as (

    select
        as_of_resolved.as_of_date,
        cast(
            as_of_resolved.as_of_date
            - cast(
                {{ horizon_days }}
                + cutoff_indexes.cutoff_index * {{ var('cutoff_spacing_days') | int }}
                as integer
            )
            as date
        ) as cutoff_date,
        as_of_resolved.first_event_date
    from as_of_resolved
    cross join range(0, {{ var('training_cutoffs') | int }}) as cutoff_indexes (cutoff_index)

),

training_cutoffs_kept as (

    select
        cutoff_date,
        as_of_date,
        false as is_scoring_cutoff,
        true as is_training_cutoff
    from training_cutoffs_listed
    where cutoff_date >= cast(first_event_date + {{ var('min_history_days') | int }} as date)

),

cutoffs_combined as (

    select
        as_of_date as cutoff_date,
        as_of_date,
        true as is_scoring_cutoff,
        false as is_training_cutoff
    from as_of_resolved

    union all

    select * from training_cutoffs_kept

),

cutoffs_described as (

    select
        cutoff_date,
        as_of_date,
        {{ horizon_days }} as horizon_days,
        is_scoring_cutoff,
        is_training_cutoff,
        is_training_cutoff
        and cutoff_date = max(cutoff_date) filter (where is_training_cutoff) over ()
            as is_validation_cutoff
    from cutoffs_combined

)

select * from cutoffs_described
