"""`purchasing-power summary`'s validation table: a method a row, the method that scored
marked (summary.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from purchasing_power.summary import BuildSummary, render_summary


def _summary(scoring_method: str, status: str = "accepted") -> BuildSummary:
    evaluations = [
        (method, metric, value)
        for method, auc, gini in (
            ("lightgbm", 0.90, 0.88),
            ("lightgbm_hurdle", 0.90, 0.88),
            ("rfm_decay", 0.81, 0.75),
            ("bg_nbd_gamma_gamma", 0.84, 0.79),
        )
        for metric, value in (("auc", auc), ("normalized_gini", gini))
    ]
    return BuildSummary(
        warehouse=Path("w.duckdb"), rows_in=10, rows_clean=10, rows_rejected=0,
        rows_duplicate_dropped=0, rejected_by_reason=[], rejected_shares_above_bound=[],
        users_scored=5, as_of="2026-01-01", horizon_days=90, model_version="pp-1",
        tiers=[], evaluations=evaluations, model_status=status, scoring_method=scoring_method,
    )  # fmt: skip


def _rows(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("Validation")) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        rows.append(line)
    return rows


def test_methods_are_rows_best_first_with_the_scorer_marked() -> None:
    rows = _rows(render_summary(_summary("lightgbm_hurdle")))
    assert [row.split()[-3] for row in rows] == ["0.900", "0.900", "0.840", "0.810"]
    assert rows[1].startswith("  * lightgbm_hurdle")
    assert sum(row.lstrip().startswith("*") for row in rows) == 1
    # no top-decile figure was read: a dash, not a zero
    assert all(row.split()[-1] == "-" for row in rows)


def test_a_baseline_that_scored_is_the_marked_row() -> None:
    rows = _rows(render_summary(_summary("rfm_decay_extended", status="baseline")))
    marked = [row for row in rows if row.lstrip().startswith("*")]
    assert [row.split()[1] for row in marked] == ["rfm_decay"]


def test_alerts_and_warnings_are_counted_apart() -> None:
    alerts = [
        ("alert", "realized_performance", "auc", 0.12, 0.10, "2026-01-01"),
        ("warn", "feature_drift_reference", "count_views_90d", 0.13, 0.10, "2026-01-01"),
        ("warn", "feature_drift_reference", "days_since_first_event", 0.7, 0.5, "2026-01-01"),
    ]
    text = render_summary(replace(_summary("lightgbm_hurdle"), alerts=alerts))
    assert "1 alert(s), 2 warning(s)" in text
    assert "  alert  realized_performance auc: 0.120 (past 0.1 since 2026-01-01)" in text
