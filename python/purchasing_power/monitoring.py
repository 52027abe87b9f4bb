"""Monitoring the scores after they are published (docs/monitoring.md): pure functions on
numpy arrays and Arrow tables, called by the dbt Python models in ``models/monitoring/``
and, at registration, by the registry.

* The drift reference frozen in a model's card (``reference``): per feature, the bins of
  its training rows (deciles, the null share kept apart) with their counts; per output
  (predicted spend, purchase probability, power index, tier) the same on the validation
  rows the model scored at registration.
* Profiles: the rows of a scoring date in the bins of a model's reference, so that PSI and
  Jensen-Shannon (computed in SQL, ``monitoring_drift``) compare like with like.
* Performance: realized figures once a score's horizon has passed (the backtest), and,
  before it has, the figures expected from the model's own purchase probabilities in the
  manner of NannyML's CBPE (confidence-based performance estimation).
* The retrain policy: the signals the previous build left in
  ``monitoring.monitoring_retrain_signals``, read back as reasons to train.

The PSI and Jensen-Shannon functions here are the definitions the SQL follows; the tests
check one against the other.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from purchasing_power import metrics

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "NULL_BIN",
    "OUTPUT_COLUMNS",
    "PERFORMANCE_SCHEMA",
    "PROFILE_SCHEMA",
    "REFERENCE_BINS",
    "REFERENCE_SCHEMA",
    "bin_counts",
    "category_reference",
    "expected_auc",
    "feature_references",
    "jensen_shannon",
    "model_reference",
    "numeric_reference",
    "performance_row",
    "population_stability_index",
    "retrain_reasons",
    "validation_figures",
]

REFERENCE_BINS = 10  # deciles of the reference rows
NULL_BIN = -1  # the bin of null (NaN) values, kept apart from the value bins
PSI_FLOOR = 1e-4  # a share of zero would make PSI infinite: shares are floored at this
# the model outputs profiled beside the features, and how each is binned
OUTPUT_COLUMNS = ("predicted_spend", "purchase_probability", "power_index", "tier")

REFERENCE_SCHEMA = pa.schema(
    [
        ("model_version", pa.string()),
        ("column_name", pa.string()),
        ("column_kind", pa.string()),
        ("bin_index", pa.int32()),
        ("lower_bound", pa.float64()),
        ("upper_bound", pa.float64()),
        ("category", pa.string()),
        ("reference_rows", pa.int64()),
        ("reference_source", pa.string()),
    ]
)
# a profile row is one bin of a reference (REFERENCE_SCHEMA's bin and rows) with the rows
# of one scoring date in it: drift reads both sides from one table
PROFILE_SCHEMA = pa.schema(
    [
        ("as_of", pa.date32()),
        *[REFERENCE_SCHEMA.field(name) for name in REFERENCE_SCHEMA.names[:-2]],
        ("row_count", pa.int64()),
        *[REFERENCE_SCHEMA.field(name) for name in REFERENCE_SCHEMA.names[-2:]],
    ]
)
_REALIZED = (
    "auc",
    "normalized_gini",
    "spearman",
    "top_decile_capture",
    "calibration_ratio",
    "bias_percent",
)
# the model's validation figures (model_evaluations) by their metric there
VALIDATION_METRICS = {
    "auc": "auc",
    "normalized_gini": "normalized_gini",
    "spearman": "spearman",
    "top_decile_capture": "top_decile_capture",
    "bias_percent": "total_bias_percent",
}
PERFORMANCE_SCHEMA = pa.schema(
    [
        ("as_of", pa.date32()),
        ("model_version", pa.string()),
        ("horizon_days", pa.int32()),
        ("is_horizon_complete", pa.bool_()),
        ("scored_users", pa.int64()),
        ("realized_buyers", pa.int64()),
        ("realized_spend", pa.float64()),
        ("predicted_spend", pa.float64()),
        *[(f"realized_{name}", pa.float64()) for name in _REALIZED],
        ("realized_buyers_ratio", pa.float64()),
        *[(f"validation_{name}", pa.float64()) for name in _REALIZED],
        *[(f"baseline_{name}", pa.float64()) for name in _REALIZED if name != "calibration_ratio"],
        ("estimated_auc", pa.float64()),
        ("estimated_buyers", pa.float64()),
        ("estimated_auc_error", pa.float64()),
        ("estimated_buyers_error", pa.float64()),
    ]
)


# --------------------------------------------------------------------------------------
# References and profiles
# --------------------------------------------------------------------------------------


def decile_edges(values: np.ndarray, *, bins: int = REFERENCE_BINS) -> list[float]:
    """The inner edges of ``bins`` quantile bins of the non-null ``values`` (ties merge
    bins: a feature that is 0 for 60% of rows has one bin for them)."""
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return []
    inner = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(edge) for edge in np.unique(inner)]


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> tuple[list[int], int]:
    """Rows of ``values`` in each bin ``[edge_k-1, edge_k)`` (the first open below, the last
    open above), and the null rows apart."""
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    positions = np.searchsorted(np.asarray(edges, dtype=np.float64), values[~missing], "right")
    return np.bincount(positions, minlength=len(edges) + 1).tolist(), int(missing.sum())


def numeric_reference(values: np.ndarray, *, bins: int = REFERENCE_BINS) -> dict[str, object]:
    """The card's reference of one numeric column: bin edges, rows per bin, null rows."""
    values = np.asarray(values, dtype=np.float64)
    edges = decile_edges(values, bins=bins)
    counts, nulls = bin_counts(values, edges)
    return {"edges": edges, "counts": counts, "null_rows": nulls}


def category_reference(values: np.ndarray, categories: Sequence[str]) -> dict[str, object]:
    """The card's reference of a categorical column: rows per category (nulls apart)."""
    values = np.asarray(values, dtype=object)
    return {
        "categories": list(categories),
        "counts": [int(np.count_nonzero(values == name)) for name in categories],
        "null_rows": int(sum(value is None for value in values)),
    }


def feature_references(features: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each feature's reference (:func:`numeric_reference`) on a matrix of rows."""
    return {name: numeric_reference(features[:, position]) for position, name in enumerate(names)}


def model_reference(
    *,
    features: Mapping[str, dict[str, Any]],
    features_source: str,
    outputs: Mapping[str, np.ndarray],
    tiers: Sequence[str],
) -> dict[str, object]:
    """The ``reference`` section of a model card: each feature's reference (on the
    training rows), each output's on the validation rows the registered model scored."""
    return {
        "bins": REFERENCE_BINS,
        "features_source": features_source,
        "outputs_source": "validation rows",
        "features": dict(features),
        "outputs": {
            **{name: numeric_reference(outputs[name]) for name in OUTPUT_COLUMNS[:3]},
            "tier": category_reference(outputs["tier"], tiers),
        },
    }


def reference_rows(
    model_version: str, column: str, kind: str, reference: Mapping[str, Any], *, source: str
) -> list[dict[str, object]]:
    """One row per bin of a column's reference (``REFERENCE_SCHEMA``), the null bin
    first; a categorical reference has one bin per category, in its order."""
    base = {"model_version": model_version, "column_name": column, "column_kind": kind}
    rows: list[dict[str, object]] = [
        {
            **base,
            "bin_index": NULL_BIN,
            "lower_bound": None,
            "upper_bound": None,
            "category": None,
            "reference_rows": int(reference["null_rows"]),
            "reference_source": source,
        }
    ]
    if "categories" in reference:
        for index, (name, count) in enumerate(
            zip(reference["categories"], reference["counts"], strict=True)
        ):
            rows.append(
                {
                    **base,
                    "bin_index": index,
                    "lower_bound": None,
                    "upper_bound": None,
                    "category": name,
                    "reference_rows": int(count),
                    "reference_source": source,
                }
            )
        return rows
    edges = list(reference["edges"])
    lowers, uppers = [None, *edges], [*edges, None]
    for index, count in enumerate(reference["counts"]):
        rows.append(
            {
                **base,
                "bin_index": index,
                "lower_bound": lowers[index],
                "upper_bound": uppers[index],
                "category": None,
                "reference_rows": int(count),
                "reference_source": source,
            }
        )
    return rows


def profile_rows(
    as_of: dt.date, reference: Sequence[Mapping[str, Any]], counts: Sequence[int], nulls: int
) -> list[dict[str, object]]:
    """One row per bin (``PROFILE_SCHEMA``) of one column at one scoring date: the rows of
    the column's ``reference`` (:func:`reference_rows`, the null bin first) with the rows
    of the date in each (``counts`` by bin, ``nulls``)."""
    return [
        {"as_of": as_of, **bin_, "row_count": int(count)}
        for bin_, count in zip(reference, [nulls, *counts], strict=True)
    ]


def population_stability_index(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI of two histograms over the same bins: sum (a - e) ln(a / e) over the shares,
    each floored at ``PSI_FLOOR`` so that an empty bin counts, but finitely."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.sum() <= 0 or a.sum() <= 0:
        return math.nan
    e = np.maximum(e / e.sum(), PSI_FLOOR)
    a = np.maximum(a / a.sum(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def jensen_shannon(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Jensen-Shannon divergence (base 2, 0 to 1) of two histograms over the same bins."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.sum() <= 0 or a.sum() <= 0:
        return math.nan
    e, a = e / e.sum(), a / a.sum()
    m = (e + a) / 2

    def part(p: np.ndarray) -> float:
        held = p > 0
        return float(np.sum(p[held] * np.log2(p[held] / m[held])))

    return 0.5 * part(e) + 0.5 * part(a)


# --------------------------------------------------------------------------------------
# Performance: realized and estimated
# --------------------------------------------------------------------------------------


def expected_auc(probability: np.ndarray) -> float:
    """The AUC to expect of ``probability`` as a ranking if it is calibrated (CBPE).

    Each user is a buyer with its own probability p, independently; the expected AUC is
    the expected number of correctly ordered (buyer, non-buyer) pairs over the expected
    number of such pairs, a pair of distinct users i, j counting p_i (1 - p_j), ties
    half. Sorted once: O(n log n)."""
    p = np.asarray(probability, dtype=np.float64)
    if len(p) < 2:
        return math.nan
    values, inverse = np.unique(p, return_inverse=True)
    negatives = np.bincount(inverse, weights=1 - p, minlength=len(values))
    below = np.concatenate(([0.0], np.cumsum(negatives)[:-1]))
    # each user's own (1 - p) is not a pair with itself: taken out of its tie group
    tied_others = negatives[inverse] - (1 - p)
    concordant = float(np.sum(p * (below[inverse] + 0.5 * tied_others)))
    pairs = float(np.sum(p) * np.sum(1 - p) - np.sum(p * (1 - p)))
    return concordant / pairs if pairs > 0 else math.nan


def _realized(
    actual: np.ndarray, purchased: np.ndarray, score: np.ndarray, spend: np.ndarray
) -> dict[str, float]:
    total = float(actual.sum())
    return {
        "auc": metrics.roc_auc(purchased, score),
        "normalized_gini": metrics.normalized_gini(actual, spend),
        "spearman": metrics.spearman(actual, spend),
        "top_decile_capture": metrics.top_decile_capture(actual, spend),
        "calibration_ratio": float(spend.sum()) / total if total > 0 else math.nan,
        "bias_percent": metrics.total_bias_percent(actual, spend),
    }


def performance_row(
    *,
    as_of: dt.date,
    model_version: str,
    horizon_days: int,
    probability: np.ndarray,
    predicted_spend: np.ndarray,
    actual_spend: np.ndarray | None = None,
    purchased: np.ndarray | None = None,
    baseline_spend: np.ndarray | None = None,
    validation: Mapping[str, float] | None = None,
) -> dict[str, object]:
    """One row of ``PERFORMANCE_SCHEMA``: the estimate always, the realized figures (the
    model's and the last-period-spend baseline's on the same users) once the horizon has
    passed (``actual_spend``, ``purchased`` and ``baseline_spend`` given), and the model's
    ``validation`` figures (by ``VALIDATION_METRICS`` key) beside them.

    The realized AUC ranks users by purchase probability against any purchase in the
    horizon; the spend figures rank by predicted spend against net spend;
    ``calibration_ratio`` is predicted over actual total spend (1: calibrated), and
    ``realized_buyers_ratio`` expected over realized buyers. A figure that cannot be
    computed (NaN: one class only, no spend) is null."""
    row: dict[str, Any] = {
        "as_of": as_of,
        "model_version": model_version,
        "horizon_days": horizon_days,
        "is_horizon_complete": actual_spend is not None,
        "scored_users": len(probability),
        "estimated_auc": expected_auc(probability),
        "estimated_buyers": float(np.sum(probability)),
        "predicted_spend": float(np.sum(predicted_spend)),
    }
    validation = validation or {}
    row.update({f"validation_{name}": validation.get(name) for name in VALIDATION_METRICS})
    if row["validation_bias_percent"] is not None:
        row["validation_calibration_ratio"] = 1 + row["validation_bias_percent"] / 100
    if actual_spend is not None and purchased is not None and baseline_spend is not None:
        purchased = np.asarray(purchased, dtype=bool)
        buyers = int(purchased.sum())
        row["realized_buyers"] = buyers
        row["realized_spend"] = float(actual_spend.sum())
        model = _realized(actual_spend, purchased, probability, predicted_spend)
        baseline = _realized(actual_spend, purchased, baseline_spend, baseline_spend)
        row.update({f"realized_{name}": value for name, value in model.items()})
        row.update(
            {
                f"baseline_{name}": value
                for name, value in baseline.items()
                if name != "calibration_ratio"
            }
        )
        row["realized_buyers_ratio"] = row["estimated_buyers"] / buyers if buyers else None
        row["estimated_auc_error"] = row["estimated_auc"] - row["realized_auc"]
        row["estimated_buyers_error"] = row["estimated_buyers"] - buyers
    return {
        name: None if isinstance(value, float) and math.isnan(value) else value
        for name, value in row.items()
    }


# --------------------------------------------------------------------------------------
# The retrain policy
# --------------------------------------------------------------------------------------


def retrain_reasons(signals: pa.Table | None, *, as_of: dt.date) -> tuple[str, ...]:
    """The reasons to train a new model under ``retrain: auto``: each triggered rule of
    ``monitoring_retrain_signals`` as the previous build left it (none where it left
    none). The rule ``model_age`` is measured anew at today's ``as_of``: its row carries
    the model's own as_of (``model_as_of``) and the policy's limit (``threshold``)."""
    if signals is None or signals.num_rows == 0:
        return ()
    reasons = []
    for row in signals.to_pylist():
        if row["rule_name"] == "model_age":
            age = (as_of - row["model_as_of"]).days
            if row["threshold"] is not None and age >= row["threshold"]:
                reasons.append(
                    f"model_age: {row['model_version']} is {age} days old at {as_of} "
                    f"(policy: retrain at {row['threshold']:g})"
                )
        elif row["is_triggered"]:
            reasons.append(f"{row['rule_name']}: {row['detail']}")
    return tuple(reasons)


SIGNALS_TABLE = "monitoring.monitoring_retrain_signals"


def read_retrain_reasons(
    connection: duckdb.DuckDBPyConnection, *, as_of: dt.date
) -> tuple[str, ...]:
    """:func:`retrain_reasons` of the signals the previous build left in the warehouse
    (none on a first build). dbt cannot order a model after one that depends on it, so
    the policy reads the monitoring of the last scoring date, not of this one."""
    from purchasing_power.warehouse import query

    schema, table = SIGNALS_TABLE.split(".")
    _, found = query(
        connection,
        "select count(*) from information_schema.tables"
        f" where table_schema = '{schema}' and table_name = '{table}'",
    )
    if not found[0][0]:
        return ()
    return retrain_reasons(connection.table(SIGNALS_TABLE).to_arrow_table(), as_of=as_of)


def _groups(table: pa.Table) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal (as_of, model_version) in a sorted table."""
    if table.num_rows == 0:
        return []
    as_of = table.column("as_of").to_numpy(zero_copy_only=False)
    version = np.asarray(table.column("model_version").to_pylist(), dtype=object)
    changes = np.flatnonzero((as_of[1:] != as_of[:-1]) | (version[1:] != version[:-1])) + 1
    starts = np.concatenate(([0], changes))
    stops = np.concatenate((changes, [table.num_rows]))
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _column(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def validation_figures(evaluations: pa.Table) -> dict[str, dict[str, float]]:
    """model_version -> its validation figures (``VALIDATION_METRICS`` keys) from
    ``model_evaluations`` rows (model_version, metric, metric_value) of the method that
    scores with each version, its mean over the rolling-origin folds."""
    names = {metric: name for name, metric in VALIDATION_METRICS.items()}
    found: dict[str, dict[str, float]] = {}
    for row in evaluations.to_pylist():
        if row["metric"] in names:
            found.setdefault(row["model_version"], {})[names[row["metric"]]] = row["metric_value"]
    return found


def performance_table(
    scores: pa.Table, outcomes: pa.Table, validation: Mapping[str, Mapping[str, float]]
) -> pa.Table:
    """``PERFORMANCE_SCHEMA`` rows for each (as_of, model_version) of ``scores`` (score
    history rows: as_of, model_version, horizon_days, purchase_probability,
    predicted_spend), realized where ``outcomes`` (monitoring_score_outcomes rows of the
    same pairs) labels them, with each model's ``validation`` figures
    (:func:`validation_figures`). Both sorted by as_of, model_version, user_id."""
    labeled = {
        (table_row[0], table_row[1]): (start, stop)
        for start, stop in _groups(outcomes)
        for table_row in [
            (outcomes["as_of"][start].as_py(), outcomes["model_version"][start].as_py())
        ]
    }
    rows = []
    for start, stop in _groups(scores):
        group = scores.slice(start, stop - start)
        key = (group["as_of"][0].as_py(), group["model_version"][0].as_py())
        realized: dict[str, np.ndarray] = {}
        if key in labeled:
            first, last = labeled[key]
            found = outcomes.slice(first, last - first)
            realized = {
                "probability": _column(found, "purchase_probability"),
                "predicted_spend": _column(found, "predicted_spend"),
                "actual_spend": _column(found, "actual_spend"),
                "purchased": _column(found, "has_purchased").astype(bool),
                "baseline_spend": _column(found, "last_period_spend"),
            }
        rows.append(
            performance_row(
                as_of=key[0],
                model_version=key[1],
                horizon_days=int(group["horizon_days"][0].as_py()),
                validation=validation.get(key[1]),
                **{
                    "probability": _column(group, "purchase_probability"),
                    "predicted_spend": _column(group, "predicted_spend"),
                    **realized,
                },
            )
        )
    return pa.Table.from_pylist(rows, schema=PERFORMANCE_SCHEMA)


# --------------------------------------------------------------------------------------
# The dbt Python models' tables: references and profiles
# --------------------------------------------------------------------------------------

CARD_SOURCE = "model card"


def _card_rows(model_version: str, reference: Mapping[str, Any]) -> list[dict[str, object]]:
    feature_source = f"{CARD_SOURCE} ({reference['features_source']})"
    output_source = f"{CARD_SOURCE} ({reference['outputs_source']})"
    rows = []
    for name, column in reference["features"].items():
        rows += reference_rows(model_version, name, "feature", column, source=feature_source)
    for name, column in reference["outputs"].items():
        rows += reference_rows(model_version, name, "output", column, source=output_source)
    return rows


def _sql_list(values: Sequence[str]) -> str:
    return ", ".join("'" + str(value).replace("'", "''") + "'" for value in values)


def _fallback_rows(
    model_version: str,
    card: Mapping[str, Any],
    *,
    examples: duckdb.DuckDBPyRelation,
    history: duckdb.DuckDBPyRelation,
) -> list[dict[str, Any]]:
    """The reference of a model registered before cards carried one: its features on the
    ``training_examples`` rows of its training cutoffs still in the table (where none is,
    on the rows there are), its outputs on its scores at the first as_of it scored;
    ``reference_source`` says which."""
    rows: list[dict[str, object]] = []
    names = [feature["name"] for feature in card["features"]]
    if names:  # a BTYD card (purchasing_power.fallback) reads no features
        rows += _fallback_feature_rows(model_version, card, names, examples=examples)
    from purchasing_power.warehouse import relation_query

    first = relation_query(
        history,
        "_rows",
        "select as_of, predicted_spend, purchase_probability, power_index, tier from _rows"
        f" where model_version = {_sql_list([model_version])}"
        " and as_of = (select min(as_of) from _rows"
        f" where model_version = {_sql_list([model_version])})",
    ).to_arrow_table()
    if first.num_rows:
        source = f"first scores (as_of {first['as_of'][0].as_py()})"
        for name in OUTPUT_COLUMNS[:3]:
            values = np.asarray(first.column(name).to_numpy(zero_copy_only=False), dtype=float)
            rows += reference_rows(
                model_version, name, "output", numeric_reference(values), source=source
            )
        tiers = sorted({tier for tier in first.column("tier").to_pylist() if tier is not None})
        tier_values = np.asarray(first.column("tier").to_pylist(), dtype=object)
        rows += reference_rows(
            model_version, "tier", "output", category_reference(tier_values, tiers), source=source
        )
    return rows


def _fallback_feature_rows(
    model_version: str,
    card: Mapping[str, Any],
    names: Sequence[str],
    *,
    examples: duckdb.DuckDBPyRelation,
) -> list[dict[str, object]]:
    """:func:`_fallback_rows`' features: on the ``training_examples`` rows of the model's
    training cutoffs still in the table, else on the rows there are."""
    from purchasing_power.warehouse import relation_query

    rows: list[dict[str, object]] = []
    cutoffs = sorted(set(card.get("training_cutoffs", [])) | {card["validation_cutoff"]})
    present = [name for name in names if name in examples.columns]
    if not present:  # training_examples no longer holds any of its features
        return rows
    held = [
        str(row[0])
        for row in relation_query(
            examples, "_rows", "select distinct cutoff_date from _rows order by 1"
        ).fetchall()
    ]
    own = [cutoff for cutoff in held if cutoff in cutoffs]
    if own:
        source = f"training_examples ({len(own)} of {len(cutoffs)} training cutoffs)"
    else:  # its cutoffs are gone: the nearest rows there are, said so
        source = (
            f"training_examples (none of its {len(cutoffs)} training cutoffs; "
            f"the {len(held)} held now)"
        )
    condition = f" where cast(cutoff_date as varchar) in ({_sql_list(own)})" if own else ""
    found = relation_query(
        examples, "_rows", f"select {', '.join(map(_quoted, present))} from _rows{condition}"
    ).to_arrow_table()
    if found.num_rows:
        for name in present:
            column = np.asarray(found.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)
            rows += reference_rows(
                model_version, name, "feature", numeric_reference(column), source=source
            )
    return rows


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def references_table(
    models: Sequence[tuple[str, str]],
    *,
    examples: duckdb.DuckDBPyRelation,
    history: duckdb.DuckDBPyRelation,
) -> pa.Table:
    """``REFERENCE_SCHEMA`` rows of each registered model (version, artifact path): the
    card's ``reference``, or for a model registered before cards carried one, the
    fallback of :func:`_fallback_rows` (``examples``: ``training_examples``; ``history``:
    the score history; DuckDB relations)."""
    import json
    from pathlib import Path

    rows: list[dict[str, object]] = []
    for model_version, artifact_path in models:
        card = json.loads((Path(artifact_path) / "card.json").read_text())
        if "reference" in card:
            rows += _card_rows(model_version, card["reference"])
        else:
            rows += _fallback_rows(model_version, card, examples=examples, history=history)
    return pa.Table.from_pylist(rows, schema=REFERENCE_SCHEMA)


@dataclass(frozen=True)
class _Bins:
    edges: list[float]
    categories: list[str] | None

    def counts(self, values: np.ndarray) -> tuple[list[int], int]:
        if self.categories is None:
            return bin_counts(np.asarray(values, dtype=np.float64), self.edges)
        held = np.asarray(values, dtype=object)
        nulls = int(sum(value is None for value in held))
        return [int(np.count_nonzero(held == name)) for name in self.categories], nulls


def _bins_of(references: pa.Table) -> dict[tuple[str, str], tuple[list[dict[str, Any]], _Bins]]:
    """(model_version, column_name) -> (its reference rows, null bin first; its bins)."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in references.to_pylist():
        grouped.setdefault((row["model_version"], row["column_name"]), []).append(row)
    bins = {}
    for key, rows in grouped.items():
        rows.sort(key=_bin_index)
        ordered = rows[1:]  # the value bins, after the null bin (-1)
        if any(row["category"] is not None for row in ordered):
            found = _Bins([], [row["category"] for row in ordered])
        else:
            found = _Bins([row["lower_bound"] for row in ordered[1:]], None)
        bins[key] = (rows, found)
    return bins


def _bin_index(row: Mapping[str, Any]) -> int:
    return int(row["bin_index"])


def profiles_table(
    references: pa.Table,
    *,
    scores: pa.Table,
    features: pa.Table | None,
    feature_model: tuple[dt.date, str] | None,
) -> pa.Table:
    """``PROFILE_SCHEMA`` rows: each output of each (as_of, model_version) of ``scores``
    (score history rows sorted by as_of and model_version), and each feature of
    ``features`` (the scoring rows of as_of, ``feature_model``: (as_of, the model that
    scored them)), counted in the bins of the model's reference (``references``,
    ``REFERENCE_SCHEMA``), beside the reference's own rows. A model without a reference
    is not profiled."""
    bins = _bins_of(references)
    rows: list[dict[str, object]] = []
    for start, stop in _groups(scores):
        group = scores.slice(start, stop - start)
        as_of, version = group["as_of"][0].as_py(), group["model_version"][0].as_py()
        for name in OUTPUT_COLUMNS:
            if (version, name) not in bins:
                continue
            reference, column_bins = bins[(version, name)]
            values = group.column(name)
            data = (
                np.asarray(values.to_pylist(), dtype=object)
                if name == "tier"
                else np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
            )
            rows += profile_rows(as_of, reference, *column_bins.counts(data))
    if features is not None and feature_model is not None:
        as_of, version = feature_model
        for (model_version, name), (reference, column_bins) in sorted(bins.items()):
            kind = reference[0]["column_kind"]
            if model_version != version or kind != "feature" or name not in features.column_names:
                continue
            values = np.asarray(
                features.column(name).to_numpy(zero_copy_only=False), dtype=np.float64
            )
            rows += profile_rows(as_of, reference, *column_bins.counts(values))
    return pa.Table.from_pylist(rows, schema=PROFILE_SCHEMA)
