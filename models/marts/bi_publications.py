"""One row per BI-facing table this build published to the read-only BI copy."""

from purchasing_power.publish import PublishSettings, database_path, publish


def model(dbt, session):
    dbt.config(materialized="table")
    # Every published mart is a parent: dbt build runs this step only after all of them
    # and their tests succeeded, and skips it when any failed, so BI keeps the last copy.
    marts = {
        "purchasing_power_scores": dbt.ref("purchasing_power_scores"),
        "purchasing_power_score_history": dbt.ref("purchasing_power_score_history"),
        "purchasing_power_score_changes": dbt.ref("purchasing_power_score_changes"),
        "purchasing_power_reasons": dbt.ref("purchasing_power_reasons"),
        "purchasing_power_tier_summary": dbt.ref("purchasing_power_tier_summary"),
        "model_performance": dbt.ref("model_performance"),
        "model_evaluations": dbt.ref("model_evaluations"),
        "data_quality_daily": dbt.ref("data_quality_daily"),
        "data_quality_summary": dbt.ref("data_quality_summary"),
        "monitoring_performance": dbt.ref("monitoring_performance"),
        "monitoring_performance_deciles": dbt.ref("monitoring_performance_deciles"),
        "monitoring_drift": dbt.ref("monitoring_drift"),
        "monitoring_data_volume": dbt.ref("monitoring_data_volume"),
        "monitoring_alerts": dbt.ref("monitoring_alerts"),
        "customer_segments": dbt.ref("customer_segments"),
        "user_price_bands": dbt.ref("user_price_bands"),
        "user_item_price_fit": dbt.ref("user_item_price_fit"),
        "category_demand_forecast": dbt.ref("category_demand_forecast"),
        "category_demand_accuracy": dbt.ref("category_demand_accuracy"),
    }
    settings = PublishSettings.from_environment(warehouse=database_path(session))
    # The history only grows, by one as_of a build: published by as_of, only what changed.
    return publish(
        session, marts, schema=dbt.this.schema, settings=settings,
        partitioned_by={"purchasing_power_score_history": "as_of"},
    )  # fmt: skip
