"""Judging scores on a held-out horizon, for the accuracy benches (``bench/zoo.py``,
``bench/cdnow/run.py``): build a warehouse at an ``as_of`` before the end of the data,
read what it scored, fit the baselines as the gate does, and measure every method on
what was then bought.

The metrics are those of issue 34, over every scored user (non-buyers included): MAE,
RMSE, Spearman, normalized Gini, top-decile capture and total bias % of predicted spend
against spend in the horizon, and the AUC of the purchase score against whether the user
bought in it (``metrics.py``, as the gate measures them).

The baselines are ``baselines.fit_and_predict``'s, every one it returns (so a baseline
added to the gate appears here without an edit), fitted on every row of
``ml.training_examples`` (all of them have complete labels by ``as_of``) and predicting
the scoring cutoff's users. Their inputs at the scoring cutoff are derived from
``features.user_features`` and ``int_events_validated`` exactly as
``models/ml/training_examples.sql`` derives them at a training cutoff
(``BASELINE_INPUTS``; ``tests/test_bench.py`` checks the two agree on a training cutoff).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from measure import REPO, Warehouse, measure
from purchasing_power import baselines, metrics
from purchasing_power.train import TrainingSettings

MODEL = "model"
COLUMNS = ("mae", "rmse", "spearman", "normalized_gini", "top_decile_capture",
           "total_bias_percent", "auc")  # fmt: skip
# what the model must beat every baseline on (train.GATING_METRICS)
GATING = ("normalized_gini", "auc")


@dataclass(frozen=True)
class Prediction:
    """A method's predicted spend over the horizon and its score for any purchase."""

    method: str
    spend: np.ndarray
    purchase_score: np.ndarray
    note: str = ""


def evaluate(
    actual_spend: np.ndarray, purchased: np.ndarray, prediction: Prediction
) -> dict[str, float]:
    """Every metric of ``COLUMNS`` of one method over the same users."""
    spend = metrics.spend_metrics(actual_spend, prediction.spend)
    auc = metrics.roc_auc(purchased, prediction.purchase_score)
    return {**{name: spend[name] for name in COLUMNS if name in spend}, "auc": auc}


def format_cell(name: str, value: float | None) -> str:
    if value is None or value != value:
        return ""
    return f"{value:.2f}" if name in ("mae", "rmse", "total_bias_percent") else f"{value:.3f}"


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
    header = (
        "| method | MAE | RMSE | Spearman | normalized Gini | top-decile capture"
        " | total bias % | AUC |"
    )
    lines = [header, "|---|" + "---:|" * len(COLUMNS)]
    for method, figures in rows.items():
        cells = [format_cell(name, figures[name]) for name in COLUMNS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def beats_every_baseline(rows: dict[str, dict[str, float]]) -> str:
    """``yes``, or on which gating metric which baseline is not beaten by the model."""
    model = rows.get(MODEL)
    others = {method: figures for method, figures in rows.items() if method != MODEL}
    if model is None:
        return "no scores"
    if not others:
        return "no baselines"
    lost = []
    for metric in GATING:
        best = max(others, key=lambda method: _or_minus_inf(others[method][metric]))
        if not model[metric] > others[best][metric]:
            lost.append(f"{metric} {model[metric]:.3f} vs {best} {others[best][metric]:.3f}")
    return "yes" if not lost else "no: " + "; ".join(lost)


def _or_minus_inf(value: float) -> float:
    return value if value == value else float("-inf")


# --------------------------------------------------------------------------------------
# The build
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    succeeded: bool
    seconds: float
    load_average: float
    tail: str  # the log's lines that say what happened


def build(raw: Path, work: Path, *, as_of: dt.date, horizon_days: int, extra_vars: dict,
          fresh: bool = True) -> Built:  # fmt: skip
    """``dbt build`` of the whole project on ``raw`` into ``work``'s warehouse, less the
    unit tests (they check the SQL on mocked rows, the same whatever the data). Where
    ``fresh``, the warehouse and every model registry in ``work`` (``artifacts*``) are
    emptied first: a model an earlier run accepted would otherwise keep scoring where
    this one's is not accepted."""
    warehouse = Warehouse(work)
    work.mkdir(parents=True, exist_ok=True)
    if fresh:
        for stale in (warehouse.path, warehouse.path.with_suffix(".duckdb.wal")):
            stale.unlink(missing_ok=True)
        for registry in work.glob("artifacts*"):
            shutil.rmtree(registry)
    log = work / f"dbt-build-{as_of}.log"
    command = [
        str(Path(sys.executable).with_name("dbt")), "build",
        "--exclude-resource-type", "unit_test",
        "--vars", json.dumps({
            "raw_path": str(raw), "as_of": as_of.isoformat(), "horizon_days": horizon_days,
            "artifacts_path": str(warehouse.artifacts), **extra_vars,
        }),
        "--target-path", str(warehouse.target), "--log-path", str(work / "logs"),
        "--no-use-colors",
    ]  # fmt: skip
    measured = measure(command, log=log, env=warehouse.env())
    keep = ("purchasing_power:", "Failure in", "Error in", "Got ", "Done.")
    tail = "\n".join(
        line for line in log.read_text().splitlines() if any(word in line for word in keep)
    )
    return Built(measured.returncode == 0, measured.wall_seconds, measured.load_average, tail)


def commit() -> str:
    """The checkout's short commit, with ``+`` when its tracked files differ from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=REPO, check=False).returncode
    return head + ("+" if dirty else "")


def model_scores(warehouse: Path, user_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, str]:
    """Predicted spend and purchase probability of each of ``user_ids`` (0 where
    unscored), and which models scored them with what status."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        scores = connection.sql(
            "select user_id, predicted_spend, purchase_probability, model_version, model_status"
            " from marts.purchasing_power_scores"
        ).pl()
    spend, probability = aligned(scores, user_ids, ["predicted_spend", "purchase_probability"])
    described = sorted(
        set(scores.select(pl.format("{} ({})", "model_version", "model_status")).to_series())
    )
    return spend, probability, f"{len(scores):,} users scored by {', '.join(described)}"


def aligned(frame: pl.DataFrame, user_ids: Sequence[str], columns: list[str]) -> list[np.ndarray]:
    """``columns`` of ``frame`` (one row per user_id) in the order of ``user_ids``, zero
    (false) for a user it lacks."""
    users = pl.DataFrame({"user_id": list(user_ids)}, schema={"user_id": pl.String})
    joined = users.join(frame, on="user_id", how="left", maintain_order="left")
    return [joined[column].fill_null(strategy="zero").to_numpy() for column in columns]


# --------------------------------------------------------------------------------------
# The baselines at the scoring cutoff
# --------------------------------------------------------------------------------------

# The baselines' inputs at one cutoff, as models/ml/training_examples.sql derives them
# (its baseline_inputs_attached and baseline_spend_last_<h>d): every user_features column
# of the cutoff's users, the RFM and BTYD inputs, and net spend (floored at 0) over the
# label window before the cutoff.
BASELINE_INPUTS = """
with user_features as (
    select * exclude (built_from) from features.user_features where cutoff_date = $cutoff
),
spend_before as (
    select
        user_id,
        sum(case when event_type = 'purchase' then amount else -amount end) as net_spend
    from intermediate.int_events_validated
    where
        is_clean
        and event_type in ('purchase', 'refund')
        and event_at >= cast($cutoff - to_days($window) as timestamp)
        and event_at < cast($cutoff as timestamp)
    group by user_id
)
select
    user_features.*,
    greatest(coalesce(spend_before.net_spend, 0), 0) as {last_period},
    nullif(count_purchase_days_lifetime, 0) - 1 as btyd_frequency,
    days_since_first_purchase - days_since_last_purchase as btyd_recency_days,
    days_since_first_purchase as btyd_age_days,
    (sum_purchase_amount_lifetime - coalesce(sum_refund_amount_lifetime, 0))
    / nullif(count_purchase_days_lifetime, 0) as btyd_monetary_value,
    days_since_last_purchase as rfm_recency_days,
    case when days_since_last_purchase is not null then count_purchase_days_lifetime end
        as rfm_frequency,
    case
        when days_since_last_purchase is not null
            then sum_purchase_amount_lifetime - coalesce(sum_refund_amount_lifetime, 0)
    end as rfm_monetary_value
from user_features
left join spend_before on user_features.user_id = spend_before.user_id
order by user_features.user_id
"""


def baseline_inputs(
    connection: duckdb.DuckDBPyConnection, *, cutoff: dt.date, settings: TrainingSettings
) -> pa.Table:
    """``BASELINE_INPUTS`` at ``cutoff``, one row per user, by user_id."""
    query = BASELINE_INPUTS.format(last_period=settings.baseline_column)
    window = settings.label_horizon_days or settings.horizon_days
    return connection.sql(query, params={"cutoff": cutoff, "window": window}).to_arrow_table()


def label_window(connection: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(horizon_days, label_horizon_days) of the warehouse's build."""
    ((horizon, window),) = connection.execute(
        "select horizon_days, label_horizon_days from intermediate.int_cutoffs_derived"
        " where is_scoring_cutoff"
    ).fetchall()
    return int(horizon), int(window)


def baseline_predictions(
    connection: duckdb.DuckDBPyConnection, scoring: pa.Table, *, settings: TrainingSettings
) -> list[Prediction]:
    """Every baseline of the gate, fitted on all of ``ml.training_examples``, predicting
    ``scoring``'s rows; spend scaled from the label window to the horizon where the
    window is shorter. None where there are no training rows (the build fell back)."""
    training = connection.table("ml.training_examples").to_arrow_table()
    if training.num_rows == 0:
        return []
    window = settings.label_horizon_days or settings.horizon_days
    fitted = baselines.fit_and_predict(
        training,
        scoring,
        horizon_days=window,
        purchase_label=settings.purchase_label,
        spend_label=settings.spend_label,
        last_period_column=settings.baseline_column,
    )
    factor = settings.horizon_days / window
    note = "" if window == settings.horizon_days else f"{window}-day window x {factor:.3f}"
    return [
        Prediction(each.method, each.spend * factor, each.purchase_score, note) for each in fitted
    ]


# --------------------------------------------------------------------------------------
# What was bought
# --------------------------------------------------------------------------------------

# Per user, what the labels measure over [as_of, as_of + horizon): net spend of purchases
# less refunds (floored at 0) and whether there was any purchase; read from the raw
# events, not the warehouse. A line's amount defaults to price x quantity (quantity to 1)
# where the log has those columns, as the input contract says.
TRUTH = """
select
    user_id,
    greatest(sum(case when event_type = 'purchase' then line else -line end), 0) as spend,
    bool_or(event_type = 'purchase') as purchased
from (
    select user_id, event_type, {line} as line
    from read_parquet($events)
    where
        event_type in ('purchase', 'refund')
        and event_time >= cast($start as timestamp)
        and event_time < cast($end as timestamp)
)
group by user_id
"""


def truth(
    events: Sequence[Path], user_ids: Sequence[str], *, as_of: dt.date, horizon_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Net spend and whether they bought in the horizon, of each of ``user_ids``."""
    files = [str(path) for path in events]
    with duckdb.connect() as connection:
        columns = {
            name
            for name, *_ in connection.execute(
                "describe select * from read_parquet($events)", {"events": files}
            ).fetchall()
        }
        line = "amount"
        if "price" in columns:
            quantity = "coalesce(quantity, 1)" if "quantity" in columns else "1"
            line = f"coalesce(amount, price * {quantity})"
        bought = connection.sql(
            TRUTH.format(line=line),
            params={
                "events": files,
                "start": as_of,
                "end": as_of + dt.timedelta(days=horizon_days),
            },
        ).pl()
    spend, purchased = aligned(bought, user_ids, ["spend", "purchased"])
    return spend, purchased


@dataclass(frozen=True)
class Judged:
    """Every method's figures on one shop's held-out horizon."""

    users: int
    buyers: int
    horizon_days: int
    label_horizon_days: int
    model_status: str  # of the scores: accepted, unproven, baseline (BTYD won), fallback
    rows: dict[str, dict[str, float]]
    notes: dict[str, str]


def judge(work: Path, events: Sequence[Path], *, as_of: dt.date) -> Judged:
    """The model (what ``marts.purchasing_power_scores`` holds) and every baseline on the
    users of ``work``'s scoring cutoff, against ``events`` in the horizon after ``as_of``."""
    warehouse = Warehouse(work).path
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        horizon, window = label_window(connection)
        settings = TrainingSettings(
            horizon_days=horizon, label_horizon_days=None if window == horizon else window
        )
        scoring = baseline_inputs(connection, cutoff=as_of, settings=settings)
        predicted = baseline_predictions(connection, scoring, settings=settings)
        statuses = connection.execute(
            "select distinct model_status from marts.purchasing_power_scores order by 1"
        ).fetchall()
    user_ids = scoring.column("user_id").to_pylist()
    spend, probability, described = model_scores(warehouse, user_ids)
    actual, purchased = truth(events, user_ids, as_of=as_of, horizon_days=horizon)
    rows, notes = {}, {}
    for prediction in (Prediction(MODEL, spend, probability, described), *predicted):
        rows[prediction.method] = evaluate(actual, purchased, prediction)
        notes[prediction.method] = prediction.note
    status = ", ".join(status for (status,) in statuses)
    return Judged(len(user_ids), int(purchased.sum()), horizon, window, status, rows, notes)
