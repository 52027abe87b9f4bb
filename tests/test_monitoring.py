"""The monitoring functions on arrays: bins, PSI and Jensen-Shannon, the CBPE estimate,
realized figures and the retrain reasons; and the generator's shift."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from purchasing_power import metrics, monitoring
from purchasing_power.generate import GeneratorSettings, Shift, generate


def test_bins_are_half_open_deciles_with_nulls_apart() -> None:
    values = np.array([0.0] * 60 + list(range(1, 41)) + [np.nan] * 5, dtype=float)
    edges = monitoring.decile_edges(values)
    # six deciles fall on 0: one bin holds them, then the values 1..40 split
    assert edges[0] == 0.0
    assert len(edges) == len(set(edges)) == 5
    counts, nulls = monitoring.bin_counts(values, edges)
    assert nulls == 5
    assert sum(counts) == 100
    assert counts[0] == 0
    assert counts[1] == 60
    # a value exactly on an edge falls in the bin the edge opens
    assert monitoring.bin_counts(np.array([edges[2]]), edges)[0][3] == 1


def test_psi_and_jensen_shannon_follow_their_definitions() -> None:
    expected, actual = [50, 30, 20, 0], [20, 30, 50, 0]
    e, a = np.array([0.5, 0.3, 0.2, 1e-4]), np.array([0.2, 0.3, 0.5, 1e-4])
    assert monitoring.population_stability_index(expected, actual) == pytest.approx(
        float(np.sum((a - e) * np.log(a / e)))
    )
    assert monitoring.population_stability_index(expected, expected) == 0.0
    # an empty bin on one side counts, finitely (the floor)
    assert 0 < monitoring.population_stability_index([10, 0], [9, 1]) < 1
    assert monitoring.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    assert monitoring.jensen_shannon(expected, expected) == 0.0
    m = (np.array([0.5, 0.3, 0.2]) + np.array([0.2, 0.3, 0.5])) / 2
    kl = lambda p: float(np.sum(p * np.log2(p / m)))  # noqa: E731
    assert monitoring.jensen_shannon(expected, actual) == pytest.approx(
        0.5 * kl(np.array([0.5, 0.3, 0.2])) + 0.5 * kl(np.array([0.2, 0.3, 0.5]))
    )


def _brute_force_expected_auc(p: np.ndarray) -> float:
    concordant = pairs = 0.0
    for i, j in itertools.permutations(range(len(p)), 2):
        weight = p[i] * (1 - p[j])
        pairs += weight
        concordant += weight * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    return concordant / pairs


def test_expected_auc_is_the_expected_share_of_ordered_pairs() -> None:
    rng = np.random.default_rng(3)
    p = np.round(rng.uniform(0, 1, 40), 1)  # ties on purpose
    assert monitoring.expected_auc(p) == pytest.approx(_brute_force_expected_auc(p))
    # calibrated probabilities: the realized AUC of labels drawn from them averages to it
    p = rng.beta(0.5, 3, 2000)
    realized = [metrics.roc_auc(rng.random(len(p)) < p, p) for _ in range(40)]
    assert np.mean(realized) == pytest.approx(monitoring.expected_auc(p), abs=0.01)
    assert math.isnan(monitoring.expected_auc(np.array([0.3])))


def test_performance_row_realized_figures_and_baseline() -> None:
    rng = np.random.default_rng(5)
    probability = rng.uniform(0, 1, 300)
    purchased = rng.random(300) < probability
    actual = np.where(purchased, rng.gamma(2, 50, 300), 0.0)
    predicted = probability * 100
    baseline = actual * rng.uniform(0, 2, 300)
    row = monitoring.performance_row(
        as_of=dt.date(2025, 4, 1), model_version="m", horizon_days=30, probability=probability,
        predicted_spend=predicted, actual_spend=actual, purchased=purchased,
        baseline_spend=baseline,
    )  # fmt: skip
    assert row["is_horizon_complete"]
    assert row["realized_buyers"] == int(purchased.sum())
    assert row["realized_auc"] == pytest.approx(metrics.roc_auc(purchased, probability))
    assert row["realized_normalized_gini"] == pytest.approx(
        metrics.normalized_gini(actual, predicted)
    )
    assert row["realized_calibration_ratio"] == pytest.approx(predicted.sum() / actual.sum())
    assert row["realized_bias_percent"] == pytest.approx(
        (row["realized_calibration_ratio"] - 1) * 100
    )
    assert row["baseline_auc"] == pytest.approx(metrics.roc_auc(purchased, baseline))
    assert row["estimated_buyers"] == pytest.approx(probability.sum())
    pending = monitoring.performance_row(
        as_of=dt.date(2025, 4, 1), model_version="m", horizon_days=30, probability=probability,
        predicted_spend=predicted,
    )  # fmt: skip
    assert not pending["is_horizon_complete"]
    assert "realized_auc" not in pending
    assert pending["estimated_auc"] == row["estimated_auc"]


def test_performance_rows_carry_validation_and_leave_what_cannot_be_computed_null() -> None:
    day, version = dt.date(2025, 4, 1), "m"
    scores = pa.table(
        {
            "as_of": [day] * 4, "model_version": [version] * 4, "horizon_days": [30] * 4,
            "purchase_probability": [0.1, 0.2, 0.3, 0.4], "predicted_spend": [1.0, 2, 3, 4],
        }
    )  # fmt: skip
    # every user bought: no non-buyer, so the AUCs cannot be computed
    outcomes = pa.table(
        {
            "as_of": [day] * 4, "model_version": [version] * 4,
            "purchase_probability": [0.1, 0.2, 0.3, 0.4], "predicted_spend": [1.0, 2, 3, 4],
            "actual_spend": [1.0, 1, 5, 5], "has_purchased": [True] * 4,
            "last_period_spend": [0.0, 1, 2, 3],
        }
    )  # fmt: skip
    evaluations = pa.table(
        {
            "model_version": [version, version, "other"],
            "metric": ["auc", "total_bias_percent", "auc"],
            "metric_value": [0.8, -10.0, 0.6],
        }
    )
    validation = monitoring.validation_figures(evaluations)
    assert validation == {version: {"auc": 0.8, "bias_percent": -10.0}, "other": {"auc": 0.6}}
    (row,) = monitoring.performance_table(scores, outcomes, validation).to_pylist()
    assert row["validation_auc"] == 0.8
    assert row["validation_calibration_ratio"] == pytest.approx(0.9)
    assert row["validation_normalized_gini"] is None
    assert row["realized_auc"] is None
    assert row["baseline_auc"] is None
    assert row["estimated_auc_error"] is None
    assert row["realized_buyers"] == 4
    assert row["realized_buyers_ratio"] == pytest.approx(1.0 / 4)
    assert row["estimated_buyers_error"] == pytest.approx(1.0 - 4)
    assert row["realized_calibration_ratio"] == pytest.approx(10 / 12)


def test_profiles_count_each_bin_beside_the_reference_rows() -> None:
    reference = monitoring.model_reference(
        features={"f": monitoring.numeric_reference(np.array([1.0, 2, 3, 4, np.nan]))},
        features_source="training rows",
        outputs={
            "predicted_spend": np.array([0.0, 10, 20, 30]),
            "purchase_probability": np.array([0.1, 0.5, 0.5, 0.9]),
            "power_index": np.array([0.0, 40, 60, 100]),
            "tier": np.array(["low", "high", "high", None], dtype=object),
        },
        tiers=["low", "high"],
    )
    references = pa.Table.from_pylist(
        monitoring._card_rows("m", reference), schema=monitoring.REFERENCE_SCHEMA
    )
    day = dt.date(2025, 4, 1)
    scores = pa.table(
        {
            "as_of": [day] * 3, "model_version": ["m"] * 3,
            "predicted_spend": [5.0, 25, 25], "purchase_probability": [0.2, 0.2, 0.95],
            "power_index": [50.0, 50, 50], "tier": ["high", "high", None],
        }
    )  # fmt: skip
    unknown = scores.set_column(1, "model_version", pa.array(["n"] * 3))
    features = pa.table({"f": [np.nan, np.nan, 4.0]})
    table = monitoring.profiles_table(
        references, scores=pa.concat_tables([scores, unknown]), features=features,
        feature_model=(day, "m"),
    )  # fmt: skip
    assert set(table.column("model_version").to_pylist()) == {"m"}  # n has no reference
    rows = {(r["column_name"], r["bin_index"]): r for r in table.to_pylist()}
    assert rows[("f", -1)]["row_count"] == 2
    assert rows[("f", -1)]["reference_rows"] == 1
    tier = [rows[("tier", index)] for index in (-1, 0, 1)]
    assert [r["category"] for r in tier] == [None, "low", "high"]
    assert [r["row_count"] for r in tier] == [1, 0, 2]
    assert [r["reference_rows"] for r in tier] == [1, 1, 2]
    for name in ("f", *monitoring.OUTPUT_COLUMNS):
        bins = [r for (column, _), r in rows.items() if column == name]
        assert sum(r["row_count"] for r in bins) == 3, name
        assert sum(r["reference_rows"] for r in bins) == (5 if name == "f" else 4), name
        assert {r["reference_source"] for r in bins} == {
            f"model card ({'training' if name == 'f' else 'validation'} rows)"
        }


def test_retrain_reasons_read_triggered_rules_and_age_the_model_anew() -> None:
    signals = pa.Table.from_pylist(
        [
            {"rule_name": "feature_drift", "model_version": "m", "model_as_of": dt.date(2025, 1, 1),
             "threshold": 0.2, "is_triggered": True, "detail": "40% of the gain"},
            {"rule_name": "realized_calibration", "model_version": "m",
             "model_as_of": dt.date(2025, 1, 1), "threshold": 0.7, "is_triggered": False,
             "detail": "fine"},
            {"rule_name": "model_age", "model_version": "m", "model_as_of": dt.date(2025, 1, 1),
             "threshold": 180.0, "is_triggered": False, "detail": ""},
        ]
    )  # fmt: skip
    early = monitoring.retrain_reasons(signals, as_of=dt.date(2025, 3, 1))
    assert early == ("feature_drift: 40% of the gain",)
    late = monitoring.retrain_reasons(signals, as_of=dt.date(2025, 6, 30))
    assert late[1] == "model_age: m is 180 days old at 2025-06-30 (policy: retrain at 180)"
    assert monitoring.retrain_reasons(None, as_of=dt.date(2025, 1, 1)) == ()


def _digest(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


def test_a_shift_changes_only_what_comes_after_it(tmp_path: Path) -> None:
    base = GeneratorSettings(users=200, days=120, seed=11, dirty_fraction=0.0)
    start = dt.date(2025, 3, 1)
    generate(tmp_path / "plain", settings=base)
    generate(
        tmp_path / "noop", settings=GeneratorSettings(**{**base.__dict__, "shift": Shift(start)})
    )
    assert _digest(tmp_path / "plain") == _digest(tmp_path / "noop")
    shifted = Shift(start, price_factor=3.0, churn_share=0.25)
    generate(
        tmp_path / "shifted", settings=GeneratorSettings(**{**base.__dict__, "shift": shifted})
    )
    cut = "timestamp '2025-03-01'"

    def rows(folder: str, where: str) -> list[tuple]:
        path = tmp_path / folder / "events.parquet"
        with duckdb.connect() as own:  # not the default connection other tests share
            return own.sql(
                f"select event_time, user_id, event_type, item_id, price, amount from '{path}'"
                f" where {where} order by all"
            ).fetchall()

    assert rows("plain", f"event_time < {cut}") == rows("shifted", f"event_time < {cut}")
    late_plain, late_shifted = (rows(f, f"event_time >= {cut}") for f in ("plain", "shifted"))
    # a quarter of the users leave: their events from the date on are gone (event ids are
    # numbered in order, so events are matched on what they are)
    left = {row[1] for row in late_plain} - {row[1] for row in late_shifted}
    assert 0.2 < len(left) / len({row[1] for row in late_plain}) < 0.35
    kept = [row for row in late_plain if row[1] not in left]
    assert [row[:4] for row in kept] == [row[:4] for row in late_shifted]
    for (*_, price, amount), (*_, new_price, new_amount) in zip(kept, late_shifted, strict=True):
        assert new_price is None or new_price == pytest.approx(3 * price, abs=0.006)
        assert new_amount is None or new_amount == pytest.approx(3 * amount, abs=0.006)


def test_the_monitoring_page_draws_performance_and_the_drift_heat_map() -> None:
    from purchasing_power.monitoring_report import MonitoringData, render_monitoring_page

    day = dt.date(2025, 4, 1)
    performance = [
        {"as_of": day + dt.timedelta(days=14 * k), "is_horizon_complete": k < 2,
         "realized_auc": 0.8 if k < 2 else None, "validation_auc": 0.85,
         "realized_normalized_gini": 0.7 if k < 2 else None, "validation_normalized_gini": 0.75,
         "baseline_normalized_gini": 0.3 if k < 2 else None, "estimated_auc": 0.82}
        for k in range(3)
    ]  # fmt: skip
    drift = [
        {"as_of": day, "column_name": "count_sessions_30d", "psi": 0.05},
        {"as_of": day + dt.timedelta(days=14), "column_name": "count_sessions_30d", "psi": 0.3},
        {"as_of": day + dt.timedelta(days=14), "column_name": "days_since_last_event", "psi": 0.12},
    ]
    alerts = [
        {"check_name": "feature_drift_reference", "subject": "count_sessions_30d",
         "alert_level": "alert", "observed_value": 0.3, "alert_threshold": 0.25,
         "since_date": day + dt.timedelta(days=14)},
    ]  # fmt: skip
    page = render_monitoring_page(MonitoringData(performance, drift, alerts))
    assert page.count("<svg ") == 2  # realized against validation; estimated against realized
    assert page.count("<polyline") == 5 + 2
    assert page.count('style="background:#f87171">0.300') == 1  # past the alert band
    assert page.count('style="background:#fde68a">0.120') == 1  # past the warn band
    assert page.count('style="background:#f1f5f9">0.050') == 1
    assert "count_sessions_30d</td><td>alert</td>" in page
