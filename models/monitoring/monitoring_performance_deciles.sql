{#-
    One row per as_of, model_version and decile of predicted spend (1 lowest, 10
    highest) whose horizon has passed: how many users, what they were predicted to
    spend and buy, and what they then did. The realized decile calibration.
-#}
with

monitoring_score_outcomes as (

    select
        user_id,
        as_of,
        model_version,
        predicted_spend,
        purchase_probability,
        has_purchased,
        actual_spend
    from {{ ref('monitoring_score_outcomes') }}

),

scores_ranked as (

    select
        *,
        ntile(10) over (
            partition by as_of, model_version order by predicted_spend asc, user_id asc
        ) as decile
    from monitoring_score_outcomes

),

deciles_summarized as (

    select
        as_of,
        model_version,
        cast(decile as integer) as decile,
        count(*) as scored_users,
        avg(predicted_spend) as mean_predicted_spend,
        avg(actual_spend) as mean_actual_spend,
        avg(purchase_probability) as mean_purchase_probability,
        avg(cast(has_purchased as double)) as buyer_share
    from scores_ranked
    group by as_of, model_version, decile

)

select * from deciles_summarized
