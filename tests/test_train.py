"""Training: rolling-origin folds, candidates judged against the baselines, the choice
and the refit, on a table built in code."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import platform
import subprocess
import sys

import duckdb
import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from model_examples import CUTOFFS, SCHEMA, SETTINGS, examples
from purchasing_power import baselines, train
from purchasing_power.baselines import COLUMNS as BASELINE_COLUMNS
from purchasing_power.baselines import METHODS
from purchasing_power.train import (
    ACCEPTED,
    BASELINE,
    CANDIDATES,
    DIRECT,
    HEADS,
    HURDLE,
    LIGHTGBM_HURDLE,
    LIGHTGBM_TWEEDIE,
    UNPROVEN,
    Evaluation,
    Fold,
    _refit,
    choose,
    fit_head,
    judge,
    rolling_origin_folds,
    time_split,
    train_models,
)
from purchasing_power.tuning import tune

HURDLE_ONLY = dataclasses.replace(SETTINGS, candidates=(LIGHTGBM_HURDLE,))


@pytest.fixture(scope="module")
def trained():
    return train_models(time_split(examples(), schema=SCHEMA, settings=SETTINGS), settings=SETTINGS)


@pytest.fixture(scope="module")
def hurdle():
    """The hurdle alone among the candidates."""
    split = time_split(examples(), schema=SCHEMA, settings=HURDLE_ONLY)
    return train_models(split, settings=HURDLE_ONLY)


# --------------------------------------------------------------------------------------
# Folds
# --------------------------------------------------------------------------------------


def _date(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


@pytest.mark.parametrize("label_days", [1, 28, 29, 30, 31, 45, 59, 60, 61, 90, 150, 151])
@pytest.mark.parametrize("spacing", [7, 30, 31])
def test_no_fold_trains_on_a_label_window_that_crosses_its_validation_cutoff(
    label_days: int, spacing: int
) -> None:
    start = dt.date(2025, 1, 31)  # month ends: 30 days after 01-31 is 03-02
    cutoffs = [(start + dt.timedelta(days=spacing * k)).isoformat() for k in range(6)]
    folds = rolling_origin_folds(cutoffs, label_days=label_days, folds=3)
    for fold in folds:
        assert fold.training_cutoffs
        for cutoff in fold.training_cutoffs:
            # the labels [cutoff, cutoff + label_days) end by the validation cutoff
            assert _date(cutoff) + dt.timedelta(days=label_days) <= _date(fold.validation_cutoff)
    # every cutoff that could train a fold does, and every cutoff that could be validated
    # on is, the latest three of them
    possible = [
        Fold(v, tuple(c for c in cutoffs if _date(c) + dt.timedelta(days=label_days) <= _date(v)))
        for v in cutoffs
    ]
    assert folds == tuple(fold for fold in possible if fold.training_cutoffs)[-3:]


def test_the_folds_rows_are_their_cutoffs_rows_and_no_later_label_reaches_in() -> None:
    table = examples(rows_per_cutoff=200)
    # three cutoffs a month apart with 30-day labels: 01-01's labels end 01-31, by 02-01;
    # 02-01's end 03-03, after 03-01, so it never trains the fold validated on 03-01
    split = time_split(table, schema=SCHEMA, settings=SETTINGS)
    assert split.folds == (
        Fold("2025-02-01", ("2025-01-01",)),
        Fold("2025-03-01", ("2025-01-01",)),
    )
    cutoff_of_row = np.asarray(split.cutoffs)[split.cutoff_index]
    for fold in split.folds:
        training = cutoff_of_row[split.fold_rows(fold, validation=False)]
        validation = cutoff_of_row[split.fold_rows(fold, validation=True)]
        assert set(training) == set(fold.training_cutoffs)
        assert set(validation) == {fold.validation_cutoff}
        assert len(training) == 200 * len(fold.training_cutoffs)
        for cutoff in training:
            assert _date(cutoff) + dt.timedelta(days=SETTINGS.label_days) <= _date(
                fold.validation_cutoff
            )


def test_a_longer_label_window_leaves_no_fold_and_says_what_to_change() -> None:
    longer = dataclasses.replace(SETTINGS, label_horizon_days=40)
    # 01-01's 40-day labels end 02-10, after 02-01; 03-01 is 59 days after 01-01: one fold
    split = time_split(examples(rows_per_cutoff=200), schema=SCHEMA, settings=longer)
    assert split.folds == (Fold("2025-03-01", ("2025-01-01",)),)
    longest = dataclasses.replace(SETTINGS, label_horizon_days=60)
    with pytest.raises(train.ShortHistoryError, match="the labels of one ending by the other"):
        time_split(examples(rows_per_cutoff=200), schema=SCHEMA, settings=longest)


# --------------------------------------------------------------------------------------
# Training and the choice
# --------------------------------------------------------------------------------------


def test_training_is_deterministic_and_beats_every_baseline(trained) -> None:
    again = train_models(
        time_split(examples(), schema=SCHEMA, settings=SETTINGS), settings=SETTINGS
    )
    assert trained.method in CANDIDATES
    for head in HEADS:
        assert (
            trained.heads.booster(head).model_to_string()
            == again.heads.booster(head).model_to_string()
        )
    assert trained.evaluations == again.evaluations
    assert trained.fold_evaluations == again.fold_evaluations
    assert trained.validation_cutoff == CUTOFFS[-1]
    # the latest fold: fitted on 01-01, validated on 03-01
    assert (trained.training_rows, trained.validation_rows) == (1500, 1500)
    assert trained.training_cutoffs == CUTOFFS
    assert trained.status == ACCEPTED
    assert trained.status_reasons == ()
    for method in METHODS:
        for metric in ("auc", "normalized_gini"):
            assert trained.metric("lightgbm", metric) > trained.metric(method, metric)


def test_the_means_are_over_the_folds_and_the_model_is_the_best_candidate(trained) -> None:
    folds = {fold.validation_cutoff for fold in trained.folds}
    assert {e.validation_cutoff for e in trained.fold_evaluations} == folds
    for evaluation in trained.evaluations:
        per_fold = [
            e.value
            for e in trained.fold_evaluations
            if (e.method, e.metric) == (evaluation.method, evaluation.metric)
        ]
        assert len(per_fold) == len(folds)
        assert evaluation.value == pytest.approx(np.mean(per_fold))
    scores = {
        method: (trained.metric(method, "auc") + trained.metric(method, "normalized_gini")) / 2
        for method in CANDIDATES
    }
    assert trained.best_candidate == max(scores, key=scores.__getitem__)
    for metric in ("auc", "normalized_gini"):
        assert trained.metric("lightgbm", metric) == trained.metric(trained.best_candidate, metric)


def test_each_head_is_its_latest_fold_fit_refitted_on_every_cutoff(hurdle) -> None:
    split = time_split(examples(), schema=SCHEMA, settings=HURDLE_ONLY)
    assert hurdle.method == LIGHTGBM_HURDLE
    for head in HEADS:
        held_out, params = fit_head(head, split=split, settings=HURDLE_ONLY)
        assert hurdle.best_iterations[head] == held_out.best_iteration
        assert hurdle.params[head] == params
        alone = _refit(head, params, split=split, rounds=held_out.best_iteration)
        assert hurdle.heads.booster(head).model_to_string() == alone.model_to_string()


def test_the_patience_is_a_share_of_the_rounds_between_its_bounds() -> None:
    assert [SETTINGS.patience(best) for best in (1, 40, 41, 120, 200, 201, 1000)] == [
        10, 10, 11, 30, 50, 50, 50,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="min_early_stopping_rounds"):
        dataclasses.replace(SETTINGS, min_early_stopping_rounds=60)


@pytest.mark.parametrize("head", ["purchase", "spend_given_purchase"])
def test_a_fixed_patience_stops_where_lightgbm_s_early_stopping_does(head: str) -> None:
    """With its bounds equal, the patience is LightGBM's own early stopping: the same
    best iteration and the same trees; a shorter one finds the same best or an earlier
    one."""
    split = time_split(examples(), schema=SCHEMA, settings=HURDLE_ONLY)
    fixed = dataclasses.replace(HURDLE_ONLY, min_early_stopping_rounds=50, max_boost_rounds=500)
    ours, params = fit_head(head, split=split, settings=fixed)
    features, label = split.rows(head, validation=False)
    valid_x, valid_y = split.rows(head, validation=True)
    training = lgb.Dataset(features, label=label, feature_name=split.feature_names)
    theirs = lgb.train(
        params,
        training,
        num_boost_round=500,
        valid_sets=[lgb.Dataset(valid_x, label=valid_y, reference=training)],
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    assert ours.best_iteration == theirs.best_iteration < 450
    assert ours.model_to_string() == theirs.model_to_string()
    shorter, _ = fit_head(head, split=split, settings=dataclasses.replace(fixed,
                          min_early_stopping_rounds=10, early_stopping_share=0.0))  # fmt: skip
    if shorter.best_iteration == ours.best_iteration:
        assert shorter.model_to_string() == ours.model_to_string()
    else:  # a better round came more than 10 rounds after an earlier best
        assert shorter.best_iteration < ours.best_iteration


def test_monotone_constraints_are_passed_only_where_a_feature_has_one() -> None:
    """All zeros constrain nothing but slow LightGBM down: left out; a constrained
    feature's head is passed every constraint and is monotone in that feature."""
    split = time_split(examples(), schema=SCHEMA, settings=HURDLE_ONLY)
    assert "monotone_constraints" not in train.head_params(
        "purchase", split=split, settings=HURDLE_ONLY
    )
    rising = dataclasses.replace(SCHEMA.features[0], monotone_constraint=1)
    constrained = dataclasses.replace(SCHEMA, features=(rising, *SCHEMA.features[1:]))
    split = time_split(examples(), schema=constrained, settings=HURDLE_ONLY)
    params = train.head_params("purchase", split=split, settings=HURDLE_ONLY, extra_features=4)
    assert params["monotone_constraints"] == [1, 0, 0, 0, 0, 0, 0]
    booster, _ = fit_head("purchase", split=split, settings=HURDLE_ONLY)
    grid = np.tile(split.features[:1], (50, 1))
    grid[:, 0] = np.linspace(0, np.nanmax(split.features[:, 0]), 50)
    assert np.all(np.diff(booster.predict(grid)) >= 0)


def test_spend_is_purchase_probability_times_spend_given_purchase(hurdle) -> None:
    features = SCHEMA.to_matrix(examples(rows_per_cutoff=200, seed=9))
    assert hurdle.heads.combination == HURDLE
    probability, spend = hurdle.heads.predict(features)
    conditional = hurdle.heads.spend_given_purchase.predict(features)
    assert np.array_equal(spend, probability * conditional)
    assert np.all((probability > 0) & (probability < 1))
    assert np.all(spend < conditional)


def test_the_single_tweedie_predicts_spend_with_its_own_head() -> None:
    settings = dataclasses.replace(SETTINGS, candidates=(LIGHTGBM_TWEEDIE,))
    result = train_models(time_split(examples(), schema=SCHEMA, settings=settings),
                          settings=settings)  # fmt: skip
    assert (result.method, result.heads.combination) == (LIGHTGBM_TWEEDIE, DIRECT)
    features = SCHEMA.to_matrix(examples(rows_per_cutoff=200, seed=9))
    probability, spend = result.heads.predict(features)
    assert np.array_equal(spend, result.heads.spend_given_purchase.predict(features))
    assert np.array_equal(probability, result.heads.purchase.predict(features))
    assert result.heads.head_names == ("purchase", "spend")


def test_folds_read_an_even_sample_and_the_winner_its_rounds_from_the_whole_fold() -> None:
    """At most max_fold_training_rows rows per fold's fits (every k-th); the method that
    scores takes its rounds from the latest fold's rows all, as without a limit."""
    table = examples(rows_per_cutoff=1500)
    capped = dataclasses.replace(HURDLE_ONLY, max_fold_training_rows=500)
    split = time_split(table, schema=SCHEMA, settings=capped)
    rows = split.fold_rows(split.latest, validation=False, at_most=500)
    assert (rows.start, rows.stop, rows.step) == (0, 1500, 3)
    assert split.examples_rows(rows).num_rows == 500
    sampled = train_models(split, settings=capped)
    whole = train_models(split, settings=HURDLE_ONLY)
    assert sampled.method == whole.method == LIGHTGBM_HURDLE
    assert sampled.best_iterations == whole.best_iterations
    for head in HEADS:
        assert (
            sampled.heads.booster(head).model_to_string()
            == whole.heads.booster(head).model_to_string()
        )
    # the folds' figures come from the sample: other fits, other figures
    assert sampled.fold_evaluations != whole.fold_evaluations


def test_every_method_is_measured_on_the_same_rows(trained) -> None:
    measured = {(e.method, e.metric) for e in trained.evaluations}
    spend_metrics = {"normalized_gini", "spearman", "top_decile_capture", "rmse", "mae"}
    for method in ("lightgbm", *CANDIDATES, *METHODS):
        assert {"auc", *spend_metrics, "total_bias_percent"} <= {
            metric for m, metric in measured if m == method
        }
    assert ("last_period_spend", "log_loss") not in measured  # spend is not a probability
    assert ("bg_nbd_gamma_gamma", "log_loss") in measured
    assert ("rfm_decay", "log_loss") in measured
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


def test_the_best_score_wins_and_a_tie_goes_to_the_first_listed() -> None:
    def figures(**scores: tuple[float, float]) -> tuple[Evaluation, ...]:
        return tuple(
            Evaluation(method, metric, value)
            for method, (auc, gini) in scores.items()
            for metric, value in (("auc", auc), ("normalized_gini", gini))
        )

    methods = ("lightgbm_hurdle", "lightgbm_tweedie", "rfm_decay")
    assert choose(figures(lightgbm_hurdle=(0.8, 0.6), lightgbm_tweedie=(0.7, 0.6),
                          rfm_decay=(0.75, 0.66)), methods) == "rfm_decay"  # fmt: skip
    # (AUC + Gini) / 2, not either alone: 0.70 against 0.71
    assert choose(figures(lightgbm_hurdle=(0.9, 0.5), lightgbm_tweedie=(0.0, 0.0),
                          rfm_decay=(0.72, 0.7)), methods) == "rfm_decay"  # fmt: skip
    assert choose(figures(lightgbm_hurdle=(0.8, 0.6), lightgbm_tweedie=(0.8, 0.6),
                          rfm_decay=(0.8, 0.6)), methods) == "lightgbm_hurdle"  # fmt: skip
    assert choose(figures(lightgbm_hurdle=(math.nan, 0.9), lightgbm_tweedie=(0.5, 0.5),
                          rfm_decay=(0.1, 0.1)), methods) == "lightgbm_tweedie"  # fmt: skip


def test_where_a_baseline_beats_every_candidate_it_is_refitted_and_scores() -> None:
    """Features that know nothing (noise), baselines that read the real history: the
    candidates cannot win (the hybrid, which reads the history too, is left out), and
    the best baseline that can score is refitted on every cutoff and carries the status
    'baseline'."""
    from purchasing_power.features import FeatureSchema, FeatureSpec

    noise = FeatureSchema((FeatureSpec("noise", "Noise"),))
    settings = dataclasses.replace(SETTINGS, candidates=(LIGHTGBM_HURDLE, LIGHTGBM_TWEEDIE))
    result = train_models(time_split(examples(), schema=noise, settings=settings),
                          settings=settings)  # fmt: skip
    scores = result.candidate_scores
    assert result.method in baselines.SCORING_METHODS
    assert result.method == max(scores, key=scores.__getitem__)
    assert result.status == BASELINE
    assert result.status_reasons[0].startswith(f"{result.method} scores:")
    assert max(scores[c] for c in settings.candidates) < scores[result.method]
    if result.method == baselines.RFM_DECAY:
        assert result.rfm_decay is not None
        assert result.heads is None
    elif result.method == baselines.LIGHTGBM_RFM:
        assert result.heads.combination == DIRECT
        assert result.heads.purchase.current_iteration() == baselines.LIGHTGBM_RFM_ROUNDS
        assert result.schema.names == [name for name, _ in baselines.LIGHTGBM_RFM_COLUMNS]
    else:
        assert result.heads is None
        assert result.rfm_decay is None


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
    with pytest.raises(
        ValueError, match="validation cutoffs of the fold validated on 2025-03-01 need both"
    ):
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
    """Memory at scale: the split keeps the feature matrix once; the table it keeps for
    the baselines and the BTYD features holds only the columns they read, and every
    fold's training and validation rows of the purchase head are views of the matrix."""
    table = examples()
    shuffled = table.take(np.random.default_rng(1).permutation(table.num_rows))
    split = time_split(shuffled, schema=SCHEMA, settings=SETTINGS)
    assert "user_id" not in split.examples.schema.names
    assert set(split.examples.schema.names) <= {
        "cutoff_date", SETTINGS.purchase_label, SETTINGS.spend_label, SETTINGS.baseline_column,
        *BASELINE_COLUMNS, *train.btyd_features.INPUT_COLUMNS,
    }  # fmt: skip
    for fold in split.folds:
        for validation in (False, True):
            features, label = split.rows("purchase", validation=validation, fold=fold)
            assert np.shares_memory(features, split.features)
            run = split.fold_rows(fold, validation=validation)
            np.testing.assert_array_equal(features, split.features[run])
            np.testing.assert_array_equal(label, split.purchased[run])
            buyers, spend = split.rows("spend_given_purchase", validation=validation, fold=fold)
            bought = split.purchased[run] > 0
            np.testing.assert_array_equal(buyers, split.features[run][bought])
            np.testing.assert_array_equal(spend, split.spend[run][bought])


def _same_split(left, right) -> None:
    np.testing.assert_array_equal(left.features, right.features)
    for name in ("is_validation", "purchased", "spend", "cutoffs", "cutoff_index", "folds"):
        assert np.array_equal(getattr(left, name), getattr(right, name)), name
    np.testing.assert_array_equal(left.btyd, right.btyd)
    for side in ("training", "validation", "examples"):
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
