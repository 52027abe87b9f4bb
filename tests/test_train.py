"""Training on a time split, judged against the baselines, on a table built in code."""

from __future__ import annotations

import math
import platform
import subprocess
import sys

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from model_examples import CUTOFFS, SCHEMA, SETTINGS, examples
from purchasing_power import train
from purchasing_power.baselines import COLUMNS as BASELINE_COLUMNS
from purchasing_power.baselines import METHODS
from purchasing_power.train import (
    ACCEPTED,
    HEADS,
    UNPROVEN,
    Evaluation,
    _refit,
    fit_head,
    judge,
    time_split,
    train_models,
)
from purchasing_power.tuning import tune


@pytest.fixture(scope="module")
def trained():
    return train_models(time_split(examples(), schema=SCHEMA, settings=SETTINGS), settings=SETTINGS)


def test_training_is_deterministic_and_beats_every_baseline(trained) -> None:
    again = train_models(
        time_split(examples(), schema=SCHEMA, settings=SETTINGS), settings=SETTINGS
    )
    for head in ("purchase", "spend_given_purchase"):
        assert (
            trained.heads.booster(head).model_to_string()
            == again.heads.booster(head).model_to_string()
        )
    assert trained.evaluations == again.evaluations
    assert trained.validation_cutoff == CUTOFFS[-1]
    assert (trained.training_rows, trained.validation_rows) == (3000, 1500)
    assert trained.status == ACCEPTED
    assert trained.status_reasons == ()
    for method in METHODS:
        for metric in ("auc", "normalized_gini"):
            assert trained.metric("lightgbm", metric) > trained.metric(method, metric)


def test_each_head_is_its_early_stopped_fit_refitted_on_every_cutoff(trained) -> None:
    split = time_split(examples(), schema=SCHEMA, settings=SETTINGS)
    for head in HEADS:
        held_out, params = fit_head(head, split=split, settings=SETTINGS)
        assert trained.best_iterations[head] == held_out.best_iteration
        assert trained.params[head] == params
        alone = _refit(head, params, split=split, rounds=held_out.best_iteration)
        assert trained.heads.booster(head).model_to_string() == alone.model_to_string()


def test_spend_is_purchase_probability_times_spend_given_purchase(trained) -> None:
    features = SCHEMA.to_matrix(examples(rows_per_cutoff=200, seed=9))
    probability, spend = trained.heads.predict(features)
    conditional = trained.heads.spend_given_purchase.predict(features)
    assert np.array_equal(spend, probability * conditional)
    assert np.all((probability > 0) & (probability < 1))
    assert np.all(spend < conditional)


def test_every_method_is_measured_on_the_same_rows(trained) -> None:
    measured = {(e.method, e.metric) for e in trained.evaluations}
    spend_metrics = {"normalized_gini", "spearman", "top_decile_capture", "rmse", "mae"}
    for method in ("lightgbm", *METHODS):
        assert {"auc", *spend_metrics, "total_bias_percent"} <= {
            metric for m, metric in measured if m == method
        }
    assert ("last_period_spend", "log_loss") not in measured  # spend is not a probability
    assert ("bg_nbd_gamma_gamma", "log_loss") in measured
    by_method: dict[str, list] = {}
    for row in trained.calibration:
        by_method.setdefault(row.method, []).append(row)
    assert set(by_method) == {"lightgbm", *METHODS}
    for rows in by_method.values():
        assert [row.decile for row in rows] == list(range(1, 11))
        assert sum(row.rows for row in rows) == trained.validation_rows
    model = by_method["lightgbm"]
    assert model[-1].mean_actual_spend > 5 * model[0].mean_actual_spend
    for curve in trained.gain_curves.values():
        assert len(curve) == 101
        assert curve[0] == 0.0
        assert curve[-1] == pytest.approx(1.0)


def test_a_model_that_loses_to_a_baseline_is_unproven() -> None:
    table = examples()
    # a baseline that knows the future: last-period spend set to the actual label
    table = table.set_column(
        table.schema.get_field_index(SETTINGS.baseline_column),
        SETTINGS.baseline_column,
        table.column(SETTINGS.spend_label),
    )
    result = train_models(time_split(table, schema=SCHEMA, settings=SETTINGS), settings=SETTINGS)
    assert result.status == UNPROVEN
    assert any(
        reason.startswith("normalized_gini") and "last_period_spend" in reason
        for reason in result.status_reasons
    )


def test_judge_needs_a_win_on_every_gating_metric_against_every_baseline() -> None:
    def evaluations(model_gini: float) -> tuple[Evaluation, ...]:
        return (
            Evaluation("lightgbm", "auc", 0.9),
            Evaluation("lightgbm", "normalized_gini", model_gini),
            Evaluation("rfm", "auc", 0.8),
            Evaluation("rfm", "normalized_gini", 0.7),
            Evaluation("bg_nbd_gamma_gamma", "auc", 0.85),
            Evaluation("bg_nbd_gamma_gamma", "normalized_gini", 0.75),
        )

    assert judge(evaluations(0.8)) == (ACCEPTED, ())
    status, reasons = judge(evaluations(0.72))
    assert status == UNPROVEN
    assert reasons == ("normalized_gini: lightgbm 0.7200 does not beat bg_nbd_gamma_gamma 0.7500",)
    assert judge(evaluations(math.nan))[0] == UNPROVEN  # an undefined metric wins nothing


def test_one_cutoff_cannot_be_time_split() -> None:
    table = examples().filter(pc.equal(pc.field("cutoff_date"), CUTOFFS[-1]))
    with pytest.raises(ValueError, match="at least 2 cutoffs"):
        time_split(table, schema=SCHEMA, settings=SETTINGS)


def test_a_validation_cutoff_without_buyers_is_refused() -> None:
    table = examples()
    label = table.schema.get_field_index(SETTINGS.purchase_label)
    is_valid = table.column("is_validation_cutoff")
    purchased = pc.and_(table.column(SETTINGS.purchase_label), pc.invert(is_valid))
    table = table.set_column(label, SETTINGS.purchase_label, purchased)
    with pytest.raises(ValueError, match="validation cutoffs need both buyers"):
        time_split(table, schema=SCHEMA, settings=SETTINGS)


def test_tuning_is_seeded_and_never_worse_than_the_defaults() -> None:
    split = time_split(examples(rows_per_cutoff=500), schema=SCHEMA, settings=SETTINGS)
    first = tune(split, settings=SETTINGS, trials=3)
    second = tune(split, settings=SETTINGS, trials=3)
    assert first == second
    for head in ("purchase", "spend_given_purchase"):
        assert first.best_losses[head] <= first.default_losses[head]
        improved = first.best_losses[head] < first.default_losses[head]
        assert (first.settings.head(head) != SETTINGS.head(head)) == improved


def test_the_split_copies_neither_the_table_nor_the_training_rows() -> None:
    """Memory at scale: the split keeps the feature matrix once; the tables it keeps
    for the baselines hold only the columns they read, and a side whose rows are one
    run in cutoff order (the purchase head's) is a view of the matrix."""
    table = examples()
    shuffled = table.take(np.random.default_rng(1).permutation(table.num_rows))
    split = time_split(shuffled, schema=SCHEMA, settings=SETTINGS)
    assert "user_id" not in split.training.schema.names
    assert set(split.training.schema.names) <= {
        "cutoff_date", "is_validation_cutoff", SETTINGS.purchase_label, SETTINGS.spend_label,
        SETTINGS.baseline_column, *BASELINE_COLUMNS,
    }  # fmt: skip
    for validation in (False, True):
        features, label = split.rows("purchase", validation=validation)
        assert np.shares_memory(features, split.features)
        mask = split.is_validation if validation else ~split.is_validation
        np.testing.assert_array_equal(features, split.features[mask])
        np.testing.assert_array_equal(label, split.purchased[mask])
        buyers, spend = split.rows("spend_given_purchase", validation=validation)
        np.testing.assert_array_equal(buyers, split.features[mask & (split.purchased > 0)])
        np.testing.assert_array_equal(spend, split.spend[mask & (split.purchased > 0)])


def _same_split(left, right) -> None:
    np.testing.assert_array_equal(left.features, right.features)
    for name in ("is_validation", "purchased", "spend", "cutoffs"):
        assert np.array_equal(getattr(left, name), getattr(right, name)), name
    for side in ("training", "validation"):
        mine, theirs = getattr(left, side), getattr(right, side)
        assert mine.schema == theirs.schema
        for name in mine.schema.names:  # NaN equals NaN here
            np.testing.assert_array_equal(
                mine.column(name).to_numpy(), theirs.column(name).to_numpy(), err_msg=name
            )


def test_the_warehouse_table_is_read_in_batches_into_the_same_split(tmp_path, monkeypatch):
    """The warehouse path: a DuckDB table, its rows stored out of order, read a few
    hundred rows at a time, gives the split of the whole Arrow table."""
    table = examples()
    shuffled = table.take(np.random.default_rng(2).permutation(table.num_rows))
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        connection.from_arrow(shuffled).create("training_examples")
        monkeypatch.setattr(train, "EXAMPLE_BATCH_ROWS", 300)
        batched = time_split(
            connection.table("training_examples"), schema=SCHEMA, settings=SETTINGS
        )
    _same_split(batched, time_split(table, schema=SCHEMA, settings=SETTINGS))
    # and that split is the table in (cutoff_date, user_id) order, sorted here by Arrow
    ordered = table.sort_by([("cutoff_date", "ascending"), ("user_id", "ascending")])
    np.testing.assert_array_equal(batched.features, SCHEMA.to_matrix(ordered))
    np.testing.assert_array_equal(batched.spend, ordered.column(SETTINGS.spend_label).to_numpy())


@pytest.mark.parametrize(
    ("repeated", "nulls", "message"),
    [
        (1, 0, "more than one row for some \\(user_id, cutoff_date\\)"),
        (0, 1, "1 rows whose user_id or cutoff_date is null"),
        # as many rows as keys stream past (2 x 2 joined, 2 lost): still refused
        (1, 2, "2 rows whose user_id or cutoff_date is null"),
    ],
)
def test_examples_must_have_one_row_per_user_and_cutoff(repeated, nulls, message) -> None:
    table = examples()
    user_id = table.column("user_id").to_pylist()
    user_id[20 : 20 + nulls] = [None] * nulls
    table = table.set_column(0, "user_id", pa.array(user_id, pa.string()))
    table = pa.concat_tables([table, table.slice(10, repeated)])
    with pytest.raises(ValueError, match=message):
        time_split(table, schema=SCHEMA, settings=SETTINGS)


def test_row_order_of_the_warehouse_does_not_matter(trained) -> None:
    table = examples()
    shuffled = table.take(np.random.default_rng(0).permutation(table.num_rows))
    again = train_models(time_split(shuffled, schema=SCHEMA, settings=SETTINGS), settings=SETTINGS)
    assert again.heads.purchase.model_to_string() == trained.heads.purchase.model_to_string()
    assert again.evaluations == trained.evaluations
    assert again.calibration == trained.calibration


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_training_gives_the_heap_s_freed_pages_back_before_it_fits() -> None:
    # A process of its own: 250 MiB of heap chunks freed between chunks still held,
    # which glibc keeps resident until pipeline._return_freed_memory trims them.
    child = """
from purchasing_power.pipeline import _return_freed_memory
def rss_mib():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:")) // 1024
freed, held = [], []
for i in range(4000):
    freed.append(bytearray(64 * 1024))
    held.append(bytearray(600))
del freed
before = rss_mib()
_return_freed_memory()
print(before, rss_mib())
"""
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, check=True
    )
    before, after = map(int, result.stdout.split())
    assert before - after >= 150, (before, after)
