{#-
    The current demand forecast spreads every scored user's predicted spend over
    categories, regions and channels, no more and no less: its total equals the sum
    of predicted_spend in purchasing_power_scores, up to the rounding to cents of
    each row. A row returned means spend was lost or counted twice.
-#}
with

purchasing_power_scores as (

    select predicted_spend
    from {{ ref('purchasing_power_scores') }}

),

category_demand_forecast as (

    select expected_spend
    from {{ ref('category_demand_forecast') }}
    where is_current

),

totals_compared as (

    select
        (select sum(predicted_spend) from purchasing_power_scores) as predicted_spend,
        (select sum(expected_spend) from category_demand_forecast) as expected_spend,
        (select count(*) from category_demand_forecast) as forecast_rows

)

select * from totals_compared
where abs(expected_spend - predicted_spend) > 0.005 * forecast_rows + 1e-6
