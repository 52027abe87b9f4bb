"""The BTYD fallback (purchasing_power.fallback): inputs from user_features, a fit on a
population drawn from BG/NBD itself, scores, and its artifact."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from model_examples import SCHEMA, SETTINGS, examples
from purchasing_power import baselines, extension, fallback
from purchasing_power.pipeline import RunSettings, _register, _training_reference
from purchasing_power.scoring import SCORE_SCHEMA, power_index, stream_scores
from purchasing_power.tiers import Tier, reference_quantiles
from purchasing_power.train import (
    BASELINE,
    LIGHTGBM_HURDLE,
    _refit_winner,
    time_split,
    train_models,
)

TIERS = Tier.from_table(
    pa.table(
        {
            "tier": ["low", "high"],
            "min_power_index": [0.0, 50.0],
            "max_power_index": [50.0, 100.0],
        }
    )
)


def _features(days, first, last, bought, refunded) -> pa.Table:
    return pa.table(
        {
            "user_id": [f"u{i}" for i in range(len(days))],
            "count_purchase_days_lifetime": pa.array(days, pa.int64()),
            "days_since_first_purchase": pa.array(first, pa.int64()),
            "days_since_last_purchase": pa.array(last, pa.int64()),
            "sum_purchase_amount_lifetime": pa.array(bought, pa.float64()),
            "sum_refund_amount_lifetime": pa.array(refunded, pa.float64()),
        }
    )


def test_inputs_are_those_training_examples_derives() -> None:
    table = _features([3, 0, None], [100, None, None], [10, None, None], [90.0, None, None],
                      [30.0, None, None])  # fmt: skip
    inputs = fallback.btyd_inputs(table)

    assert inputs.bought.tolist() == [True, False, False]
    assert inputs.frequency[0] == 2  # repeat purchase days
    assert inputs.recency[0] == 90  # first to last purchase day
    assert inputs.age[0] == 100
    assert inputs.monetary_value[0] == 20.0  # net spend per purchase day


def _drawn_population(users: int, seed: int) -> pa.Table:
    """Users whose purchase days follow BG/NBD (r 0.5, alpha 10, a 1, b 3) over 200 days."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.5, 1 / 10.0, users)
    dropout = rng.beta(1.0, 3.0, users)
    days, first, last, spend = [], [], [], []
    for lam, p in zip(rate, dropout, strict=True):
        age = int(rng.integers(30, 200))
        t, times = 0.0, [0.0]
        while True:
            t += rng.exponential(1 / lam)
            if t >= age:
                break
            times.append(t)
            if rng.random() < p:
                break
        days.append(len(times))
        first.append(age)
        last.append(round(age - times[-1]))
        spend.append(float(len(times) * rng.gamma(4.0, 10.0)))
    return _features(days, first, last, spend, [0.0] * users)


def test_the_fit_finds_the_process_that_drew_the_users_and_scores_like_the_baseline() -> None:
    table = _drawn_population(3000, seed=5)
    scorer = fallback.fit(table, horizon_days=90)

    assert scorer.bg_nbd.r == pytest.approx(0.5, rel=0.15)
    assert scorer.bg_nbd.alpha == pytest.approx(10.0, rel=0.15)
    assert scorer.bg_nbd.a == pytest.approx(1.0, rel=0.3)
    assert scorer.bg_nbd.b == pytest.approx(3.0, rel=0.3)
    spend, probability = scorer.predict(table)
    inputs = fallback.btyd_inputs(table)
    args = (scorer.bg_nbd, inputs.frequency, inputs.recency, inputs.age)
    np.testing.assert_allclose(probability, baselines.probability_of_purchase(*args, horizon=90.0))
    expected = baselines.expected_purchases(*args, horizon=90.0) * (
        baselines.expected_purchase_value(
            scorer.gamma_gamma, inputs.frequency + 1, inputs.monetary_value
        )
    )
    np.testing.assert_allclose(spend, expected)
    # a longer horizon, more spend for everybody
    longer = fallback.BtydScorer(scorer.bg_nbd, scorer.gamma_gamma, 180, scorer.users,
                                 scorer.buyers)  # fmt: skip
    assert (longer.predict(table)[0] > spend).all()


def test_never_buyers_get_nothing_and_too_few_buyers_is_an_error() -> None:
    table = pa.concat_tables(
        [_drawn_population(200, seed=1), _features([0], [None], [None], [None], [None])]
    )
    spend, probability = fallback.fit(table, horizon_days=30).predict(table)
    assert (spend[-1], probability[-1]) == (0.0, 0.0)
    assert (spend[:-1] > 0).all()
    with pytest.raises(ValueError, match="needs purchases from at least 2 users"):
        fallback.fit(_features([0, 1], [None, 5], [None, 5], [None, 9.0], [None, 0.0]),
                     horizon_days=30)  # fmt: skip


def test_the_artifact_scores_what_the_fit_predicts(tmp_path: Path) -> None:
    table = _drawn_population(500, seed=2)
    scorer = fallback.fit(table, horizon_days=60)
    spend, probability = scorer.predict(table)
    card = fallback.card(scorer, as_of="2025-06-01", reason="short history",
                         reference_quantiles=reference_quantiles(spend),
                         scores=fallback.summarize_scores(spend, probability))  # fmt: skip
    path = fallback.write_artifact(card, artifacts_dir=tmp_path)

    assert fallback.is_fallback(path)
    assert card["status"] == "fallback"
    assert card["method"] == "bg_nbd_gamma_gamma"
    batches = list(
        fallback.score_batches(
            table.to_batches(max_chunksize=128),
            model_dir=path,
            schema=SCORE_SCHEMA,
            power_index=power_index,
        )
    )
    scored = pa.Table.from_batches(batches, schema=SCORE_SCHEMA)
    np.testing.assert_allclose(scored["predicted_spend"].to_numpy(), spend)
    np.testing.assert_allclose(scored["purchase_probability"].to_numpy(), probability)
    assert set(scored["model_status"].to_pylist()) == {"fallback"}
    assert set(scored["scoring_graph"].to_pylist()) == {"bg_nbd_gamma_gamma"}
    index = scored["power_index"].to_numpy()
    assert index.min() >= 0
    assert index.max() <= 100
    assert np.corrcoef(index, spend)[0, 1] > 0.5


def test_the_extension_follows_the_btyd_curve_and_keeps_the_ranking() -> None:
    table = _drawn_population(2000, seed=3)
    extended = extension.fit(table, horizon_days=180, label_horizon_days=60)
    scorer = fallback.fit(table, horizon_days=180)
    bought = fallback.btyd_inputs(table).bought
    spend_180 = scorer.predict(table)[0][bought].sum()
    short = fallback.BtydScorer(scorer.bg_nbd, scorer.gamma_gamma, 60, scorer.users,
                                scorer.buyers)  # fmt: skip
    spend_60, probability_60 = short.predict(table)
    assert extended.spend_factor == pytest.approx(spend_180 / spend_60[bought].sum())
    # dropout bends the curve: three times the window, less than three times the spend
    assert 1.0 < extended.spend_factor < 3.0
    # the exponent carries the buyers' mean probability from 60 to 180 days
    _, probability_180 = scorer.predict(table)
    mapped = 1 - (1 - probability_60[bought].mean()) ** extended.probability_exponent
    assert mapped == pytest.approx(probability_180[bought].mean())
    spend = np.array([0.0, 1.0, 5.0, 2.0])
    probability = np.array([0.0, 0.1, 0.9, 0.5])
    new_spend, new_probability = extended.apply(spend, probability)
    assert np.argsort(new_spend).tolist() == np.argsort(spend).tolist()
    assert np.argsort(new_probability).tolist() == np.argsort(probability).tolist()
    assert (new_probability >= probability).all()
    assert new_probability[0] == 0.0
    assert extension.Extension.from_card(extended.to_card()) == extended


@pytest.mark.parametrize("method", baselines.SCORING_METHODS)
def test_each_baseline_that_can_score_registers_and_scores_as_it_predicts(
    method: str, tmp_path: Path
) -> None:
    """A baseline that won the folds, refitted on every cutoff and registered: its
    scores carry the status 'baseline' and are its own predictions of the scoring rows
    (rfm_decay's spend at BTYD's level, its ranking its own)."""
    settings = dataclasses.replace(SETTINGS, candidates=(LIGHTGBM_HURDLE,))
    split = time_split(examples(rows_per_cutoff=300), schema=SCHEMA, settings=settings)
    result = train_models(split, settings=settings)
    heads, schema, rfm_decay, params, rounds = _refit_winner(method, split, None, settings=settings)
    validation = split.fold_rows(split.latest, validation=True)
    rows = split.examples.slice(validation.start, validation.stop - validation.start)
    won = dataclasses.replace(
        result, method=method, heads=heads, schema=schema, rfm_decay=rfm_decay, params=params,
        best_iterations=rounds, status=BASELINE, validation_features=(
            baselines.lightgbm_rfm_matrix(rows) if heads is not None else None
        ),
    )  # fmt: skip
    scoring = examples(rows_per_cutoff=100, seed=5)
    run = RunSettings(artifacts_dir=tmp_path, horizon_days=30, num_threads=1)
    registered = _register(won, scoring, TIERS, as_of="2025-04-01", settings=run,
                           training=settings, tuning=None, extended=None,
                           feature_reference=_training_reference(won, split),
                           training_reason="retrain: true")  # fmt: skip
    assert (registered.status, registered.card["method"]) == (BASELINE, method)
    assert registered.card["training_reason"] == "retrain: true"
    # trees carry the drift reference of their features on every training row; a
    # baseline scored in Python has none (monitoring takes its first scores)
    reference = registered.card.get("reference", {})
    if heads is not None:
        assert reference["features_source"] == "training rows"
        assert list(reference["features"]) == schema.names
        counts = reference["features"][schema.names[0]]
        assert sum(counts["counts"]) + counts["null_rows"] == len(split.features)
    else:
        assert _training_reference(won, split) is None
        assert "features" not in reference
    assert registered.card["fold_metrics"]
    scored = stream_scores(
        pa.RecordBatchReader.from_batches(scoring.schema, scoring.to_batches(64)),
        model_dir=registered.path,
        device="cpu",
    ).read_all()
    assert set(scored["model_status"].to_pylist()) == {BASELINE}
    spend = scored["predicted_spend"].to_numpy()
    probability = scored["purchase_probability"].to_numpy()
    if method == baselines.LIGHTGBM_RFM:
        expected_probability, expected = heads.predict(baselines.lightgbm_rfm_matrix(scoring))
        np.testing.assert_allclose(spend, expected, rtol=1e-12)
        np.testing.assert_allclose(probability, expected_probability, atol=1e-12)
        assert set(scored["scoring_graph"].to_pylist()) == {"tree_ensemble"}
        return
    assert set(scored["scoring_graph"].to_pylist()) == {method}
    btyd = fallback.fit(scoring, horizon_days=30)
    btyd_spend, btyd_probability = btyd.predict(scoring)
    bought = fallback.btyd_inputs(scoring).bought
    if method == baselines.BTYD:
        np.testing.assert_allclose(spend, btyd_spend)
        np.testing.assert_allclose(probability, btyd_probability)
        return
    own, own_probability = rfm_decay.predict(*fallback.rfm_decay_inputs(scoring))
    np.testing.assert_allclose(spend, own * registered.card["spend_level"])
    np.testing.assert_allclose(probability, own_probability)
    assert spend[bought].sum() == pytest.approx(btyd_spend[bought].sum())
