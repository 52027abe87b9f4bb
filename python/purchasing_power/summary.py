"""The short report printed at the end of `make demo`, read from the warehouse."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from purchasing_power.warehouse import query


@dataclass(frozen=True)
class BuildSummary:
    warehouse: Path
    rows_in: int
    rows_clean: int
    rows_rejected: int
    rows_duplicate_dropped: int
    rejected_by_reason: list[tuple[str, int]]
    users_scored: int
    as_of: str
    horizon_days: int
    model_version: str
    tiers: list[tuple[str, int, float]]
    evaluations: list[tuple[str, str, float]]
    # monitoring_alerts: (level, check, subject, value, threshold crossed, since); None
    # where the warehouse has no monitoring tables (built before them)
    alerts: list[tuple[str, str, str, float, float, str]] | None = None


def read_summary(connection: duckdb.DuckDBPyConnection, *, warehouse: Path) -> BuildSummary:
    _, quality = query(connection, "select * from marts.data_quality_summary")
    rows_in, rows_clean, rows_rejected, rows_dropped = quality[0]
    _, reasons = query(
        connection,
        "select reject_reason, count(*) from marts.rejected_events group by 1 order by 2 desc, 1",
    )
    _, scored = query(
        connection,
        "select count(*), any_value(as_of)::varchar, any_value(horizon_days),"
        " any_value(model_version) from marts.purchasing_power_scores",
    )
    _, tiers = query(
        connection,
        "select scores.tier, count(*), avg(scores.predicted_spend)"
        " from marts.purchasing_power_scores as scores"
        " inner join reference.power_tiers as tiers on scores.tier = tiers.tier"
        " group by scores.tier, tiers.tier_rank order by tiers.tier_rank desc",
    )
    users, as_of, horizon_days, model_version = scored[0]
    _, evaluations = query(
        connection,
        "select method, metric, metric_value from marts.model_evaluations"
        f" where model_version = '{model_version}'"
        " and metric in ('auc', 'normalized_gini', 'top_decile_capture')"
        " order by metric, method",
    )
    _, monitored = query(
        connection,
        "select count(*) from information_schema.tables"
        " where table_schema = 'monitoring' and table_name = 'monitoring_alerts'",
    )
    alerts = None
    if monitored[0][0]:
        _, alerts = query(
            connection,
            "select alert_level, check_name, subject, observed_value,"
            " case when alert_level = 'alert' then alert_threshold else warn_threshold end,"
            " since_date::varchar from monitoring.monitoring_alerts"
            " order by alert_level = 'warn', check_name, subject",
        )
    return BuildSummary(
        warehouse=warehouse,
        rows_in=rows_in,
        rows_clean=rows_clean,
        rows_rejected=rows_rejected,
        rows_duplicate_dropped=rows_dropped,
        rejected_by_reason=reasons,
        users_scored=users,
        as_of=as_of,
        horizon_days=horizon_days,
        model_version=model_version,
        tiers=tiers,
        evaluations=evaluations,
        alerts=alerts,
    )


def render_summary(summary: BuildSummary) -> str:
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in summary.rejected_by_reason)
    lines = [
        f"Events: {summary.rows_in:,} rows in, {summary.rows_clean:,} clean, "
        f"{summary.rows_rejected:,} rejected, {summary.rows_duplicate_dropped:,} exact duplicates "
        "dropped",
        f"  rejected by reason: {reasons or 'none'}",
        f"Scored {summary.users_scored:,} users as of {summary.as_of} for the next "
        f"{summary.horizon_days} days with {summary.model_version}",
        "  tier        users   mean predicted spend",
    ]
    lines += [f"  {tier:<10} {users:>6,}   {spend:>12,.2f}" for tier, users, spend in summary.tiers]
    lines.append("Validation (latest complete cutoff), LightGBM vs the baselines:")
    by_metric: dict[str, dict[str, float]] = {}
    for method, metric, value in summary.evaluations:
        by_metric.setdefault(metric, {})[method] = value
    for metric, values in by_metric.items():
        cells = "  ".join(f"{method} {value:.3f}" for method, value in sorted(values.items()))
        lines.append(f"  {metric:<20} {cells}")
    if summary.alerts is not None:
        lines.append(
            f"Monitoring alerts (monitoring.monitoring_alerts): {len(summary.alerts) or 'none'}"
        )
        lines += [
            f"  {level:<5}  {check} {subject}: {value:.3f} (past {threshold:g} since {since})"
            for level, check, subject, value, threshold, since in summary.alerts
        ]
    lines += [
        f"Warehouse: {summary.warehouse}",
        "Query it: .venv/bin/purchasing-power query "
        '"select tier, count(*) from marts.purchasing_power_scores group by tier"',
    ]
    return "\n".join(lines)
