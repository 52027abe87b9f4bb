{#-
    Reasons are kept for every scored user: BI reads them beside each score, so they
    get cheaper only through fewer trees or faster code, never by skipping users.
    A user scored by a model with trees has one reason per rank 1..3 (fewer where the
    model reads fewer features), all from that model; a user scored in Python (the
    BTYD fallback or rfm_decay: no trees to explain, execution_provider 'python') has
    none. Each row returned is a user that breaks it, with what is wrong.
-#}
with

purchasing_power_scores as (

    select
        user_id,
        model_version
    from {{ ref('purchasing_power_scores') }}

),

ml_scores as (

    select
        user_id,
        execution_provider
    from {{ ref('ml_scores') }}

),

ml_models as (

    select
        model_version,
        feature_count
    from {{ ref('ml_models') }}

),

reasons_counted as (

    select
        user_id,
        count(*) as reason_rows,
        count(distinct reason_rank) as reason_ranks,
        count(distinct model_version) as model_versions,
        any_value(model_version) as model_version
    from {{ ref('purchasing_power_reasons') }}
    group by user_id

),

reasons_checked as (

    select
        coalesce(purchasing_power_scores.user_id, reasons_counted.user_id) as user_id,
        purchasing_power_scores.model_version,
        ml_scores.execution_provider,
        coalesce(reasons_counted.reason_rows, 0) as reason_rows,
        case
            when purchasing_power_scores.user_id is null then 'reasons of an unscored user'
            when ml_scores.execution_provider = 'python'
                then case when reasons_counted.user_id is not null then 'reasons without trees' end
            when reasons_counted.user_id is null then 'no reasons'
            when
                reasons_counted.reason_rows != least(3, ml_models.feature_count)
                or reasons_counted.reason_ranks != reasons_counted.reason_rows
                then 'not one reason per rank'
            when
                reasons_counted.model_versions != 1
                or reasons_counted.model_version != purchasing_power_scores.model_version
                then 'reasons of another model'
        end as broken
    from purchasing_power_scores
    full outer join reasons_counted
        on purchasing_power_scores.user_id = reasons_counted.user_id
    left join ml_scores
        on purchasing_power_scores.user_id = ml_scores.user_id
    left join ml_models
        on purchasing_power_scores.model_version = ml_models.model_version

)

select * from reasons_checked
where broken is not null
