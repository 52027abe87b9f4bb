{#-
    One row per event date from the first to the day before this build's as_of:
    clean and rejected raw rows (days without any row included, as zeros), the
    rejected share, and the clean rows against the same weekday of the four weeks
    before (volume_ratio, null until four weeks are there).
-#}
with

data_quality_daily as (

    select
        event_date,
        outcome,
        row_count
    from {{ ref('data_quality_daily') }}

),

int_cutoffs_derived as (

    select as_of_date
    from {{ ref('int_cutoffs_derived') }}
    where is_scoring_cutoff

),

dates_spanned as (

    select cast(unnest(generate_series(
        (select min(data_quality_daily.event_date) from data_quality_daily),
        (select int_cutoffs_derived.as_of_date - 1 from int_cutoffs_derived),
        interval 1 day
    )) as date) as event_date

),

days_counted as (

    select
        dates_spanned.event_date,
        coalesce(sum(data_quality_daily.row_count) filter (
            where data_quality_daily.outcome = 'clean'
        ), 0) as clean_rows,
        coalesce(sum(data_quality_daily.row_count) filter (
            where data_quality_daily.outcome = 'rejected'
        ), 0) as rejected_rows
    from dates_spanned
    left join data_quality_daily
        on dates_spanned.event_date = data_quality_daily.event_date
    group by dates_spanned.event_date

),

trailing_weeks_compared as (

    select
        event_date,
        cast(clean_rows as bigint) as clean_rows,
        cast(rejected_rows as bigint) as rejected_rows,
        rejected_rows / nullif(clean_rows + rejected_rows, 0) as rejected_share,
        avg(clean_rows) over same_weekday as trailing_clean_rows,
        count(*) over same_weekday as trailing_weeks
    from days_counted
    window same_weekday as (
        partition by isodow(event_date) order by event_date
        rows between 4 preceding and 1 preceding
    )

),

ratios_computed as (

    select
        event_date,
        clean_rows,
        rejected_rows,
        rejected_share,
        case when trailing_weeks = 4 then trailing_clean_rows end as trailing_clean_rows,
        case
            when trailing_weeks = 4 then clean_rows / nullif(trailing_clean_rows, 0)
        end as volume_ratio
    from trailing_weeks_compared

)

select * from ratios_computed
