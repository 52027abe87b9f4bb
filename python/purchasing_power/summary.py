"""The short report printed at the end of `make demo`, read from the warehouse."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import duckdb

from purchasing_power.warehouse import query


@dataclass(frozen=True)
class RejectedShare:
    """A raw file or event date whose rejected share passed its bound (the build warned)."""

    scope: str  # file or day
    name: str  # the file's path, or the date
    rows_in: int
    rejected_share: float
    top_reject_reason: str
    max_rejected_share: float


@dataclass(frozen=True)
class BuildSummary:
    warehouse: Path
    rows_in: int
    rows_clean: int
    rows_rejected: int
    rows_duplicate_dropped: int
    rejected_by_reason: list[tuple[str, int]]
    rejected_shares_above_bound: list[RejectedShare]
    users_scored: int
    as_of: str
    horizon_days: int
    model_version: str
    tiers: list[tuple[str, int, float]]
    evaluations: list[tuple[str, str, float]]
    # monitoring_alerts: (level, check, subject, value, threshold crossed, since); None
    # where the warehouse has no monitoring tables (built before them)
    alerts: list[tuple[str, str, str, float, float, str]] | None = None
    model_status: str = "accepted"
    scoring_method: str = "lightgbm_hurdle"
    label_horizon_days: int | None = None


# the summary's validation columns: (metric, header)
SUMMARY_METRICS = (("auc", "AUC"), ("normalized_gini", "Gini"), ("top_decile_capture", "top 10%"))


def read_summary(connection: duckdb.DuckDBPyConnection, *, warehouse: Path) -> BuildSummary:
    _, quality = query(connection, "select * from marts.data_quality_summary")
    rows_in, rows_clean, rows_rejected, rows_dropped = quality[0]
    _, reasons = query(
        connection,
        "select reject_reason, count(*) from marts.rejected_events group by 1 order by 2 desc, 1",
    )
    _, above = query(
        connection,
        "select scope, coalesce(source_file, cast(event_date as varchar)) as name, rows_in,"
        " rejected_share, top_reject_reason, max_rejected_share"
        " from marts.data_quality_rejected_shares where is_rejected_share_above_bound"
        " order by scope desc, name",
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
        f" where model_version = '{model_version}' and is_mean_over_folds"
        f" and metric in ({', '.join(repr(metric) for metric, _ in SUMMARY_METRICS)})"
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
    _, active = query(
        connection,
        "select model_status, scoring_method from ml.ml_models"
        f" where model_version = '{model_version}'",
    )
    model_status, scoring_method = active[0] if active else ("accepted", "lightgbm_hurdle")
    _, windows = query(
        connection,
        "select label_horizon_days from intermediate.int_cutoffs_derived where is_scoring_cutoff",
    )
    return BuildSummary(
        label_horizon_days=windows[0][0] if windows else None,
        model_status=model_status,
        scoring_method=scoring_method,
        warehouse=warehouse,
        rows_in=rows_in,
        rows_clean=rows_clean,
        rows_rejected=rows_rejected,
        rows_duplicate_dropped=rows_dropped,
        rejected_by_reason=reasons,
        rejected_shares_above_bound=[RejectedShare(*row) for row in above],
        users_scored=users,
        as_of=as_of,
        horizon_days=horizon_days,
        model_version=model_version,
        tiers=tiers,
        evaluations=evaluations,
        alerts=alerts,
    )


def method_sentence(summary: BuildSummary) -> list[str]:
    """One plain sentence on what scored, where it was not the trained model."""
    if summary.model_status == "fallback":
        return [
            f"  No model was trained: the history holds no complete {summary.horizon_days}-day "
            f"labels, so {summary.scoring_method} (BG/NBD x Gamma-Gamma fitted on all history "
            "before as_of) scored every user over the whole horizon; use more history or a "
            "shorter horizon_days to train one."
        ]
    if summary.model_status == "baseline":
        method = summary.scoring_method.removesuffix("_extended")
        return [
            f"  No candidate model beat the baseline {method} on the rolling-origin folds and "
            "no accepted model exists, so that baseline scored every user."
        ]
    if summary.scoring_method.endswith("_extended"):
        return [
            f"  The model learnt {summary.label_horizon_days}-day labels, the longest the history "
            f"holds for a validation fold, and its scores were extended to "
            f"{summary.horizon_days} days by the BG/NBD purchase-rate curve of today's users."
        ]
    if summary.model_status == "unproven":
        return ["  The model that scored has not beaten every baseline (status 'unproven')."]
    return []


def _render_evaluations(summary: BuildSummary) -> list[str]:
    """The means over the folds, a method a row, best (AUC + Gini) / 2 first; the method
    that scored marked. ``lightgbm`` repeats the best candidate's row under the name the
    gate judges."""
    values: dict[str, dict[str, float]] = {}
    for method, metric, value in summary.evaluations:
        values.setdefault(method, {})[metric] = value
    if not values:
        return []

    def rank(method: str) -> tuple[bool, float, str]:
        found = values[method]
        score = (found.get("auc", math.nan) + found.get("normalized_gini", math.nan)) / 2
        return math.isnan(score), 0.0 if math.isnan(score) else -score, method

    scorer = summary.scoring_method.removesuffix("_extended")
    ordered = sorted(values, key=rank)
    width = max(len(method) for method in values)
    header = "".join(f"{title:>9}" for _, title in SUMMARY_METRICS)
    lines = [
        "Validation (mean over the rolling-origin folds); * scored:",
        f"    {'method':<{width}}{header}",
    ]
    for method in ordered:
        cells = "".join(
            f"{values[method][metric]:>9.3f}" if metric in values[method] else f"{'-':>9}"
            for metric, _ in SUMMARY_METRICS
        )
        lines.append(f"  {'*' if method == scorer else ' '} {method:<{width}}{cells}")
    return lines


def render_summary(summary: BuildSummary) -> str:
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in summary.rejected_by_reason)
    lines = [
        f"Events: {summary.rows_in:,} rows in, {summary.rows_clean:,} clean, "
        f"{summary.rows_rejected:,} rejected, {summary.rows_duplicate_dropped:,} exact duplicates "
        "dropped",
        f"  rejected by reason: {reasons or 'none'}",
        *_render_rejected_shares(summary.rejected_shares_above_bound),
        f"Scored {summary.users_scored:,} users as of {summary.as_of} for the next "
        f"{summary.horizon_days} days with {summary.model_version}",
        *method_sentence(summary),
        "  tier        users   mean predicted spend",
    ]
    lines += [f"  {tier:<10} {users:>6,}   {spend:>12,.2f}" for tier, users, spend in summary.tiers]
    lines += _render_evaluations(summary)
    if summary.alerts is not None:
        levels = [alert[0] for alert in summary.alerts]
        lines.append(
            f"Monitoring (monitoring.monitoring_alerts): {levels.count('alert')} alert(s), "
            f"{levels.count('warn')} warning(s)"
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


def _render_rejected_shares(above: list[RejectedShare]) -> list[str]:
    """The build's data-quality warnings: each file or day above its rejected-share bound."""
    if not above:
        return []
    lines = [
        f"  WARNING: {len(above):,} {'file or day' if len(above) == 1 else 'files or days'}"
        " above the rejected share of seeds/data_quality_thresholds.csv"
        " (rows in marts.rejected_events):"
    ]
    lines += [
        f"    {share.scope} {share.name}: {share.rejected_share:.1%} of {share.rows_in:,} rows"
        f" rejected, most often {share.top_reject_reason}"
        f" (bound {share.max_rejected_share * 100:g}%)"
        for share in above
    ]
    return lines
