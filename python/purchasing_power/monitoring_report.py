"""The model report's monitoring page: one self-contained HTML page (inline SVG) from the
monitoring tables of a built warehouse: realized performance against validation over
time, the estimate made before the labels against what was realized, and the drift heat
map of the model's top features. Reading is in :func:`read_monitoring`, rendering is pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

from purchasing_power.report import CSS, _e, _fmt, _legend, _nice_max, _Plot, _ticks

TOP_FEATURES = 12
HEAT = ((0.10, "#f1f5f9"), (0.25, "#fde68a"), (float("inf"), "#f87171"))  # ok, warn, alert


@dataclass(frozen=True)
class MonitoringData:
    """What the page shows; rows as dicts of the monitoring tables' columns."""

    performance: list[dict[str, Any]]  # monitoring_performance, by as_of
    drift: list[dict[str, Any]]  # monitoring_drift, features against the reference, top features
    alerts: list[dict[str, Any]]  # monitoring_alerts


def _rows(connection: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    relation = connection.sql(sql)
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def read_monitoring(
    connection: duckdb.DuckDBPyConnection, *, top: int = TOP_FEATURES
) -> MonitoringData:
    """The monitoring tables of a built warehouse (``monitoring`` schema)."""
    return MonitoringData(
        performance=_rows(
            connection, "select * from monitoring.monitoring_performance order by 1, 2"
        ),
        drift=_rows(
            connection,
            "with ranked as (select column_name, max(feature_gain_share) as gain_share"
            " from monitoring.monitoring_drift where column_kind = 'feature'"
            f" group by 1 order by 2 desc nulls last, 1 limit {int(top)})"
            " select drift.as_of, drift.model_version, drift.column_name, drift.psi,"
            " drift.drift_level, ranked.gain_share"
            " from monitoring.monitoring_drift as drift inner join ranked using (column_name)"
            " where drift.compared_with = 'reference'"
            " order by ranked.gain_share desc nulls last, drift.column_name, drift.as_of",
        ),
        alerts=_rows(connection, "select * from monitoring.monitoring_alerts order by 1, 2"),
    )


def _day(value: dt.date) -> float:
    return float(value.toordinal())


def _over_time(
    rows: Sequence[dict[str, Any]],
    series: Sequence[tuple[str, str, str]],
    *,
    title: str,
    y_label: str,
) -> str:
    """Lines of ``series`` (column, label, colour; dashed where the label says
    validation or estimated) over as_of."""
    points = {
        column: [(_day(row["as_of"]), row[column]) for row in rows if row.get(column) is not None]
        for column, _, _ in series
    }
    found = [value for line in points.values() for _, value in line]
    days = [day for line in points.values() for day, _ in line]
    if not found:
        return f'<p class="meta">{_e(title)}: no figures yet.</p>'
    low = min(0.0, min(found))
    top = _nice_max(max(found))
    plot = _Plot((min(days), max(days) if max(days) > min(days) else min(days) + 1), (low, top))
    ticks = sorted({min(days), max(days)})
    plot.axes(
        "as_of",
        y_label,
        x_ticks=ticks,
        y_ticks=_ticks(top),
        x_fmt=lambda day: dt.date.fromordinal(int(day)).isoformat(),
        y_fmt=lambda value: f"{value:.2f}",
    )
    for column, label, colour in series:
        style = (
            {"stroke_dasharray": "5 4"} if ("validation" in label or "estimated" in label) else {}
        )
        if points[column]:
            plot.polyline(points[column], colour, **style)
    return plot.svg(title)


def _heat_colour(psi: float | None) -> str:
    if psi is None:
        return "#ffffff"
    return next(colour for bound, colour in HEAT if psi < bound)


def drift_heat_map(drift: Sequence[dict[str, Any]]) -> str:
    """A table: one row per top feature, one column per as_of, cells PSI coloured by
    level (the default thresholds' bands)."""
    dates = sorted({row["as_of"] for row in drift})
    features: list[str] = []
    for row in drift:
        if row["column_name"] not in features:
            features.append(row["column_name"])
    cells = {(row["column_name"], row["as_of"]): row["psi"] for row in drift}
    head = "".join(f"<th>{_e(day.isoformat())}</th>" for day in dates)
    body = "".join(
        f"<tr><td>{_e(name)}</td>"
        + "".join(
            f'<td style="background:{_heat_colour(cells.get((name, day)))}">'
            f"{_fmt(cells.get((name, day)))}</td>"
            for day in dates
        )
        + "</tr>"
        for name in features
    )
    return f"<table><tr><th>feature (by gain)</th>{head}</tr>{body}</table>"


def _alerts_table(alerts: Sequence[dict[str, Any]]) -> str:
    if not alerts:
        return "<p>No check is past its warn or alert threshold.</p>"
    body = "".join(
        f"<tr><td>{_e(row['check_name'])}</td><td>{_e(row['subject'])}</td>"
        f"<td>{_e(row['alert_level'])}</td><td>{_fmt(row['observed_value'])}</td>"
        f"<td>{_fmt(row['alert_threshold'])}</td><td>{_e(row['since_date'])}</td></tr>"
        for row in alerts
    )
    return (
        "<table><tr><th>check</th><th>subject</th><th>level</th><th>value</th>"
        f"<th>alert at</th><th>since</th></tr>{body}</table>"
    )


def render_monitoring_page(data: MonitoringData) -> str:
    """The monitoring page of the model report."""
    realized = [row for row in data.performance if row["is_horizon_complete"]]
    colours = ("#1f6feb", "#93c5fd", "#16a34a", "#86efac", "#9333ea")
    performance = _over_time(
        realized,
        [
            ("realized_auc", "realized AUC", colours[0]),
            ("validation_auc", "validation AUC", colours[1]),
            ("realized_normalized_gini", "realized normalized Gini", colours[2]),
            ("validation_normalized_gini", "validation normalized Gini", colours[3]),
            ("baseline_normalized_gini", "last-period baseline normalized Gini", colours[4]),
        ],
        title="Realized against validation",
        y_label="metric",
    )
    performance_legend = _legend(
        [
            "realized AUC", "validation AUC", "realized normalized Gini",
            "validation normalized Gini", "last-period baseline normalized Gini",
        ],
        list(colours),
    )  # fmt: skip
    estimate = _over_time(
        data.performance,
        [
            ("estimated_auc", "estimated AUC", colours[0]),
            ("realized_auc", "realized AUC", colours[2]),
        ],
        title="Estimated against realized AUC",
        y_label="AUC",
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Model monitoring</title>
<style>{CSS}</style></head>
<body><main>
<h1>Model monitoring</h1>
<p class="meta">From the monitoring tables of the warehouse (docs/monitoring.md):
{len(data.performance)} scoring dates and models, {len(realized)} with their horizon
passed.</p>
<section><h2>Alerts</h2>{_alerts_table(data.alerts)}</section>
<section><h2>Realized performance against validation over time</h2>{performance_legend}
<div class="grid"><figure>{performance}<figcaption>Solid: the published scores against what
users then spent; dashed: the model's validation figure.</figcaption></figure></div></section>
<section><h2>Estimated against realized</h2><div class="grid"><figure>{estimate}
<figcaption>Dashed: the AUC expected from the purchase probabilities (CBPE) at as_of;
solid: the AUC realized once the horizon passed.</figcaption></figure></div></section>
<section><h2>Drift of the top features</h2><p class="meta">PSI against the model's
training reference; amber from 0.10, red from 0.25.</p>{drift_heat_map(data.drift)}</section>
</main></body></html>
"""
