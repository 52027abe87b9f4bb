"""A published BI copy of any size, without a dbt build: synthetic marts with the real
columns and types (``models/marts/_marts__models.yml``), published by the real
``publish`` (what ``marts.bi_publications`` runs), so that the scoring API reads exactly
the tables and the file layout a build leaves.

``--users`` users scored every day for ``--runs`` days (the history); the scores, the
reasons (three a user), the segments and the changes flagged are those of the last day.
Random values from a fixed seed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from purchasing_power.publish import PublishSettings, publish

MODEL_VERSION = "pp-20260101-000000-0000000000"
FEATURES = (
    ("days_since_last_purchase", "Days since the last purchase"),
    ("sum_purchase_amount_365d", "Spend in the last 365 days"),
    ("count_orders_90d", "Orders in the last 90 days"),
    ("ratio_cart_adds_to_views_90d", "Cart adds per product view over the last 90 days"),
    ("count_sessions_30d", "Sessions in the last 30 days"),
)
TIER = "case when {i} < 25 then 'low' when {i} < 50 then 'medium' when {i} < 80 then 'high'" \
    " else 'premium' end"  # fmt: skip


def _marts(
    connection: duckdb.DuckDBPyConnection, *, users: int, runs: int, first_as_of: dt.date
) -> None:
    connection.execute("create schema marts")
    connection.execute("select setseed(0.25)")
    connection.execute(
        f"""
        create table marts.purchasing_power_score_history as
        select
            'u' || lpad(user_number::varchar, 7, '0') as user_id,
            cast($first + day::int as date) as as_of,
            cast(90 as integer) as horizon_days,
            '{MODEL_VERSION}' as model_version,
            'accepted' as model_status,
            exp(random() * 7) as predicted_spend,
            random() as purchase_probability,
            (user_number * 7919 % 100 + day * 13 % 17) % 100 + random() as power_index,
            cast(null as varchar) as tier,
            'CPUExecutionProvider' as execution_provider,
            'tree_ensemble' as scoring_graph,
            cast($first + day::int as timestamp) + interval 6 hour as scored_at
        from range({runs}) as days(day), range({users}) as scored(user_number)
        """,
        {"first": first_as_of},
    )
    connection.execute(
        "update marts.purchasing_power_score_history set tier = " + TIER.format(i="power_index")
    )
    connection.execute(
        """
        create table marts.purchasing_power_scores as
        select user_id, as_of, horizon_days, model_version, model_status, predicted_spend,
            purchase_probability, power_index, tier, scored_at
        from marts.purchasing_power_score_history
        where as_of = (select max(as_of) from marts.purchasing_power_score_history)
        """
    )
    connection.execute(
        """
        create table marts.customer_segments as
        select user_id, as_of, horizon_days, model_version,
            case when power_index >= 80 then 'high_value' when power_index < 20 then 'dormant'
                else 'steady' end as segment,
            cast(case when power_index >= 80 then 2 when power_index < 20 then 5 else 6 end
                as integer) as segment_priority,
            'synthetic' as segment_description
        from marts.purchasing_power_scores
        """
    )
    features = ", ".join(f"('{name}', '{text}', {code})" for code, (name, text) in
                         enumerate(FEATURES))  # fmt: skip
    connection.execute(
        f"""
        create table marts.purchasing_power_reasons as
        with features(feature_name, feature_description, code) as (values {features})
        select scores.user_id, scores.as_of, scores.model_version,
            cast(ranks.reason_rank as integer) as reason_rank,
            features.feature_name, features.feature_description,
            case when random() < 0.1 then null else random() * 100 end as feature_value,
            (random() - 0.5) / ranks.reason_rank as contribution,
            exp((random() - 0.5) / ranks.reason_rank) as spend_multiplier,
            random() > 0.5 as is_raising_spend
        from marts.purchasing_power_scores as scores
        cross join range(1, 4) as ranks(reason_rank)
        inner join features
            on features.code = (hash(scores.user_id) + ranks.reason_rank) % {len(FEATURES)}
        """
    )
    connection.execute(
        """
        create table marts.purchasing_power_score_changes as
        with previous as (
            select user_id, as_of, model_version, power_index, tier, predicted_spend
            from marts.purchasing_power_score_history
            where as_of = (select max(as_of) - 1 from marts.purchasing_power_score_history)
        )
        select scores.user_id, scores.as_of, previous.as_of as previous_as_of,
            scores.model_version, previous.model_version as previous_model_version,
            false as is_model_changed,
            scores.power_index, previous.power_index as previous_power_index,
            scores.power_index - previous.power_index as power_index_change,
            scores.tier, previous.tier as previous_tier,
            scores.tier != previous.tier as is_tier_changed,
            cast(null as integer) as tier_rank_change,
            case when scores.power_index > previous.power_index then 'up' else 'down' end
                as direction,
            scores.predicted_spend, previous.predicted_spend as previous_predicted_spend
        from marts.purchasing_power_scores as scores
        inner join previous using (user_id)
        where abs(scores.power_index - previous.power_index) >= 10
            or scores.tier != previous.tier
        """
    )
    connection.execute(
        f"""
        create table marts.model_evaluations as
        -- two folds and the mean over them (validation_cutoff_date null)
        select '{MODEL_VERSION}' as model_version, 'accepted' as model_status,
            case folds.fold when 0 then null
                else cast($validation as date) - 30 * (2 - folds.fold) end
                as validation_cutoff_date,
            folds.fold = 0 as is_mean_over_folds, method,
            method = 'lightgbm' as is_model, method = 'lightgbm_hurdle' as is_scoring_method,
            metric,
            case when method like 'lightgbm%' then 0.8 else 0.7 end + random() / 10
                as metric_value
        from unnest(['lightgbm', 'lightgbm_hurdle', 'rfm', 'bg_nbd_gamma_gamma'])
                as methods(method),
            unnest(['auc', 'normalized_gini', 'spearman', 'rmse']) as metrics(metric),
            unnest([0, 1, 2]) as folds(fold)
        """,
        {"validation": first_as_of - dt.timedelta(days=90)},
    )
    connection.execute(
        f"""
        create table marts.model_performance as
        select '{MODEL_VERSION}' as model_version, 'accepted' as model_status,
            cast($validation as date) as validation_cutoff_date, method,
            method = 'lightgbm' as is_model, cast(decile as integer) as decile,
            cast({users} // 10 as bigint) as user_count,
            decile * 10.0 as mean_predicted_spend, decile * 11.0 as mean_actual_spend,
            10.0 / 11 as calibration_ratio, decile / 5.5 as lift,
            (11 - decile) / 10.0 as cumulative_user_share,
            (11 - decile) / 10.0 as cumulative_spend_capture
        from unnest(['lightgbm', 'rfm']) as methods(method), range(1, 11) as deciles(decile)
        """,
        {"validation": first_as_of - dt.timedelta(days=90)},
    )


def publish_synthetic(
    database: Path,
    *,
    users: int,
    runs: int = 2,
    first_as_of: dt.date = dt.date(2026, 1, 1),
    pseudonym_key: bytes | None = None,
    work: Path | None = None,
    segments: bool = True,
    history_order: str | None = None,
) -> str:
    """Publish a synthetic shop's marts to ``database`` (and its Parquet folder) as a
    build would; the last day scored is ``first_as_of + runs - 1``; without
    ``segments``, as a build before customer_segments; the warehouse's history stored in
    ``history_order`` (SQL) where given, else day by day and by user. Returns the
    publication_id."""
    warehouse = (work or database.parent) / f".synthetic-{users}-{runs}.duckdb"
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    warehouse.unlink(missing_ok=True)
    try:
        with duckdb.connect(str(warehouse)) as connection:
            _marts(connection, users=users, runs=runs, first_as_of=first_as_of)
            if history_order is not None:
                history = "marts.purchasing_power_score_history"
                connection.execute(
                    f"create or replace table {history} as select * from {history}"
                    f" order by {history_order}"
                )
            names = (
                "purchasing_power_scores", "purchasing_power_score_history",
                "purchasing_power_score_changes", "purchasing_power_reasons",
                "model_performance", "model_evaluations",
            )  # fmt: skip
            names += ("customer_segments",) if segments else ()
            published = publish(
                connection,
                {name: connection.table(f"marts.{name}") for name in names},
                schema="marts",
                settings=PublishSettings(database=database, pseudonym_key=pseudonym_key),
                partitioned_by={"purchasing_power_score_history": "as_of"},
            )
    finally:
        warehouse.unlink(missing_ok=True)
        warehouse.with_name(warehouse.name + ".wal").unlink(missing_ok=True)
    return published.column("publication_id")[0].as_py()
