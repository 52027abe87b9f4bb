{#-
    One row per forecast as_of whose horizon has passed and category: the demand
    forecast of category_demand_forecast against what was then bought, over all
    regions and channels. Errors are measured against the spend of the users scored
    at as_of (what the forecast covers) and against everyone's (new customers too).
-#}
with

category_demand_forecast as (

    select
        as_of,
        horizon_days,
        model_version,
        category,
        expected_spend,
        actual_spend,
        actual_spend_all_users
    from {{ ref('category_demand_forecast') }}
    where is_horizon_complete

),

categories_totalled as (

    select
        as_of,
        horizon_days,
        model_version,
        category,
        sum(expected_spend) as expected_spend,
        sum(actual_spend) as actual_spend,
        sum(actual_spend_all_users) as actual_spend_all_users
    from category_demand_forecast
    group by as_of, horizon_days, model_version, category

),

errors_measured as (

    -- percentages of positive actual spend only
    select
        as_of,
        horizon_days,
        model_version,
        category,
        expected_spend,
        actual_spend,
        actual_spend_all_users,
        100 * abs(expected_spend - actual_spend)
        / if(actual_spend > 0, actual_spend, null) as absolute_percentage_error,
        100 * (expected_spend - actual_spend)
        / if(actual_spend > 0, actual_spend, null) as bias_percent,
        100 * abs(expected_spend - actual_spend_all_users)
        / if(actual_spend_all_users > 0, actual_spend_all_users, null)
            as absolute_percentage_error_all_users,
        100 * (expected_spend - actual_spend_all_users)
        / if(actual_spend_all_users > 0, actual_spend_all_users, null)
            as bias_percent_all_users
    from categories_totalled

)

select * from errors_measured
