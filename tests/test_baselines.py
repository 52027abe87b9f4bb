"""Baselines: BG/NBD and Gamma-Gamma against simulations of their own stories, RFM and
last-period spend on small tables built in code."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from purchasing_power import baselines
from purchasing_power.baselines import BgNbd, GammaGamma

TRUE_BG_NBD = BgNbd(r=0.5, alpha=20.0, a=0.8, b=2.5)
HORIZON = 90.0


def _simulate_bg_nbd(
    rng: np.random.Generator, users: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Repeat purchases, recency, age and purchases in the next HORIZON days."""
    rate = rng.gamma(TRUE_BG_NBD.r, 1 / TRUE_BG_NBD.alpha, users)
    drop = rng.beta(TRUE_BG_NBD.a, TRUE_BG_NBD.b, users)
    age = rng.uniform(30, 300, users)
    x, t_x, future = np.zeros(users), np.zeros(users), np.zeros(users)
    for i in range(users):
        t = 0.0
        while True:
            t += rng.exponential(1 / rate[i])
            if t > age[i] + HORIZON:
                break
            if t <= age[i]:
                x[i] += 1
                t_x[i] = t
            else:
                future[i] += 1
            if rng.random() < drop[i]:
                break
    return x, t_x, age, future


@pytest.fixture(scope="module")
def simulated() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return _simulate_bg_nbd(np.random.default_rng(0), 6000)


def test_bg_nbd_maximum_likelihood_recovers_the_parameters(simulated) -> None:
    x, t_x, age, _ = simulated
    fitted = baselines.fit_bg_nbd(x, t_x, age)
    assert fitted.r == pytest.approx(TRUE_BG_NBD.r, rel=0.15)
    assert fitted.alpha == pytest.approx(TRUE_BG_NBD.alpha, rel=0.2)
    assert fitted.a == pytest.approx(TRUE_BG_NBD.a, rel=0.3)
    assert fitted.b == pytest.approx(TRUE_BG_NBD.b, rel=0.3)
    # the optimum: nudging any parameter lowers the likelihood
    best = baselines.bg_nbd_log_likelihood(fitted, x, t_x, age).sum()
    for name in ("r", "alpha", "a", "b"):
        nudged = BgNbd(**{**fitted.__dict__, name: getattr(fitted, name) * 1.05})
        assert baselines.bg_nbd_log_likelihood(nudged, x, t_x, age).sum() < best


def test_bg_nbd_predictions_match_the_simulated_future(simulated) -> None:
    x, t_x, age, future = simulated
    probability = baselines.probability_of_purchase(TRUE_BG_NBD, x, t_x, age, horizon=HORIZON)
    expected = baselines.expected_purchases(TRUE_BG_NBD, x, t_x, age, horizon=HORIZON)
    assert probability.mean() == pytest.approx((future > 0).mean(), abs=0.015)
    assert expected.mean() == pytest.approx(future.mean(), rel=0.06)
    for repeat in (0, 1, 2):
        group = x == repeat
        assert probability[group].mean() == pytest.approx((future[group] > 0).mean(), abs=0.03)
        assert expected[group].mean() == pytest.approx(future[group].mean(), rel=0.12)
    assert np.all((probability >= 0) & (probability <= 1))


def test_a_user_silent_for_long_is_less_likely_alive() -> None:
    x = np.array([5.0, 5.0])
    age = np.array([200.0, 200.0])
    recent, long_ago = 195.0, 40.0
    probability = baselines.probability_of_purchase(
        TRUE_BG_NBD, x, np.array([recent, long_ago]), age, horizon=HORIZON
    )
    assert probability[0] > probability[1] + 0.2


def test_gamma_gamma_recovers_the_parameters_and_shrinks_to_the_mean() -> None:
    rng = np.random.default_rng(1)
    users, truth = 5000, GammaGamma(p=6.0, q=4.0, gamma=15.0)
    transactions = rng.integers(1, 8, users).astype(float)
    scale = rng.gamma(truth.q, 1 / truth.gamma, users)
    mean_value = np.array(
        [rng.gamma(truth.p, 1 / s, int(n)).mean() for s, n in zip(scale, transactions, strict=True)]
    )
    fitted = baselines.fit_gamma_gamma(transactions, mean_value)
    assert fitted.p == pytest.approx(truth.p, rel=0.2)
    assert fitted.q == pytest.approx(truth.q, rel=0.2)
    assert fitted.gamma == pytest.approx(truth.gamma, rel=0.3)
    population = truth.p * truth.gamma / (truth.q - 1)
    one, many = baselines.expected_purchase_value(
        truth, np.array([1.0, 50.0]), np.array([population * 3, population * 3])
    )
    # one purchase shrinks a high value towards the mean more than fifty do
    assert population < one < many < population * 3


def test_the_btyd_fits_do_not_depend_on_the_order_of_the_rows(simulated) -> None:
    """The same users in another order give the same parameters to the last bit (the
    scoring cutoff's rows come from the warehouse in no fixed order; before the fits
    summed in ``canonical_order``, BG/NBD's r moved in its fifth digit)."""
    x, t_x, age, _ = simulated
    shuffled = np.random.default_rng(7).permutation(len(x))
    assert baselines.fit_bg_nbd(x, t_x, age) == baselines.fit_bg_nbd(
        x[shuffled], t_x[shuffled], age[shuffled]
    )
    bought = x > 0
    value = np.random.default_rng(8).gamma(3.0, 20.0, len(x))
    transactions, mean_value = x[bought] + 1, value[bought]
    order = np.random.default_rng(9).permutation(len(transactions))
    assert baselines.fit_gamma_gamma(transactions, mean_value) == baselines.fit_gamma_gamma(
        transactions[order], mean_value[order]
    )


def _table(**columns: list) -> pa.Table:
    return pa.table({name: pa.array(values, pa.float64()) for name, values in columns.items()})


def test_rfm_scores_by_training_quintiles_and_predicts_cell_means() -> None:
    edges = np.array([1.0, 2.0, 3.0, 4.0])
    assert baselines.quintile_scores(np.array([0.5, 1.0, 2.5, 9.0, np.nan]), edges).tolist() == [
        1, 2, 3, 5, 0,
    ]  # fmt: skip
    buyers = 50
    training = _table(
        rfm_recency_days=[*range(1, buyers + 1), None, None],
        rfm_frequency=[*range(buyers, 0, -1), None, None],
        rfm_monetary_value=[*range(buyers, 0, -1), None, None],
        purchased=[1.0] * 10 + [0.0] * (buyers - 10) + [0.0, 1.0],
        spend=[100.0] * 10 + [0.0] * (buyers - 10) + [0.0, 8.0],
    )
    validation = _table(
        rfm_recency_days=[1.0, 49.0, None],
        rfm_frequency=[50.0, 1.0, None],
        rfm_monetary_value=[50.0, 1.0, None],
        last=[0.0, 0.0, 0.0],
    )
    rfm = baselines._rfm(
        training,
        validation,
        labels=baselines._Labels(
            purchased=training.column("purchased").to_numpy(),
            spend=training.column("spend").to_numpy(),
        ),
    )
    # the best cell (15) held the ten buyers of the training rows; never-buyers: 1 of 2
    assert rfm.spend.tolist() == [100.0, 0.0, 4.0]
    assert rfm.purchase_score.tolist() == [1.0, 0.0, 0.5]


def test_rfm_decay_halves_every_quarter_and_sums_to_the_training_labels() -> None:
    training = _table(
        rfm_monetary_value=[100.0] * 6 + [None],
        btyd_age_days=[100.0] * 6 + [None],
        rfm_recency_days=[0.0] * 3 + [91.0] * 3 + [None],
    )
    validation = _table(
        rfm_monetary_value=[30.0, 30.0, None],
        btyd_age_days=[10.0, 10.0, None],
        rfm_recency_days=[0.0, 182.0, None],
    )
    # two of three recent buyers bought again, one of three older ones
    labels = baselines._Labels(purchased=np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]),
                               spend=np.array([70.0, 70.0, 0.0, 40.0, 0.0, 0.0, 6.0]))  # fmt: skip
    decay = baselines._rfm_decay(training, validation, labels=labels, horizon=10.0)
    # training raw predictions 10 and 5 (x 0.5 after 91 days), 45 in all for 180 of labels
    assert decay.params["scale"] == pytest.approx(4.0)
    # validation raw: 3 per day x 10 = 30, and 30 x 0.25 after 182 days; x 4
    assert decay.spend.tolist() == pytest.approx([120.0, 30.0, 6.0])
    # a probability, increasing in the spend; never-buyers get their purchase rate
    assert decay.is_probability
    assert 0 < decay.purchase_score[1] < decay.purchase_score[0] < 1
    assert decay.purchase_score[2] == 1.0
    assert decay.params["logit_slope"] >= 0


def test_rfm_decay_s_purchase_curve_is_the_logistic_fit_of_its_spend() -> None:
    rng = np.random.default_rng(4)
    n = 4000
    monetary = rng.gamma(2, 50, n)
    age = rng.uniform(30, 300, n)
    recency = age * rng.random(n)
    raw = baselines.rfm_decay_spend(monetary, age, recency, horizon=30.0)
    bought = rng.random(n) < 1 / (1 + np.exp(-(-2.0 + 0.8 * np.log1p(raw))))
    table = _table(rfm_monetary_value=monetary.tolist(), btyd_age_days=age.tolist(),
                   rfm_recency_days=recency.tolist())  # fmt: skip
    fitted = baselines.fit_rfm_decay(
        table, purchased=bought.astype(float), spend=raw * bought, horizon=30.0
    )
    # the labels' spend is the raw prediction where they bought: scale = share that bought
    assert fitted.scale == pytest.approx(float((raw * bought).sum() / raw.sum()))
    spend, probability = fitted.predict(monetary, age, recency)
    assert np.all(np.diff(probability[np.argsort(spend)]) >= 0)
    # at the optimum the residuals are orthogonal to 1 and to the log spend
    residual = probability - bought
    assert abs(residual.mean()) < 1e-6
    assert abs((residual * np.log1p(spend)).mean()) < 1e-5


def _rfm_columns(rng: np.random.Generator, n: int) -> dict[str, list]:
    return {
        name: np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2, 20, n)).tolist()
        for name, _ in baselines.LIGHTGBM_RFM_COLUMNS
    }


def test_lightgbm_rfm_is_deterministic_fixed_and_reads_its_columns_only() -> None:
    rng = np.random.default_rng(6)
    n = 1200
    columns = _rfm_columns(rng, n)
    signal = np.nan_to_num(np.asarray(columns["sum_purchase_amount_90d"]))
    purchased = (rng.random(n) < signal / (signal + 40)).astype(float)
    spend = purchased * rng.gamma(2, 1 + signal / 4)
    training = _table(**columns, other=rng.random(n).tolist())
    labels = baselines._Labels(purchased=purchased, spend=spend)

    def fitted(table: pa.Table) -> baselines.BaselinePrediction:
        return baselines._lightgbm_rfm(table, table.slice(0, 300), labels=labels, seed=42,
                                       num_threads=1)  # fmt: skip

    first, again = fitted(training), fitted(training)
    np.testing.assert_array_equal(first.spend, again.spend)
    np.testing.assert_array_equal(first.purchase_score, again.purchase_score)
    # another column changes nothing; one of its own does
    other = training.set_column(training.schema.get_field_index("other"), "other",
                                pa.array(rng.random(n)))  # fmt: skip
    np.testing.assert_array_equal(fitted(other).spend, first.spend)
    moved = training.set_column(
        training.schema.get_field_index("count_orders_30d"), "count_orders_30d",
        pa.array(rng.random(n)),
    )  # fmt: skip
    assert not np.array_equal(fitted(moved).spend, first.spend)
    # fixed parameters and rounds, no early stopping
    purchase, spend_head = baselines.fit_lightgbm_rfm(
        baselines.lightgbm_rfm_matrix(training), purchased, spend, seed=42, num_threads=1
    )
    assert (
        purchase.current_iteration()
        == spend_head.current_iteration()
        == (baselines.LIGHTGBM_RFM_ROUNDS)
    )
    assert purchase.params["learning_rate"] == baselines.LIGHTGBM_RFM_PARAMS["learning_rate"]
    assert spend_head.params["objective"] == "tweedie"
    assert purchase.feature_name() == [name for name, _ in baselines.LIGHTGBM_RFM_COLUMNS]
    assert first.is_probability
    assert np.all((first.purchase_score > 0) & (first.purchase_score < 1))


@pytest.mark.parametrize("seed", [0, 1])
def test_the_analytic_gradients_are_the_likelihoods_slopes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    x = rng.integers(0, 6, n).astype(float)
    age = rng.uniform(20, 300, n)
    t_x = np.where(x > 0, age * rng.random(n), 0.0)
    theta = np.log([0.7, 30.0, 0.5, 3.0]) + rng.normal(0, 0.3, 4)

    def bg_nbd(at: np.ndarray) -> float:
        return float(baselines.bg_nbd_log_likelihood(BgNbd(*np.exp(at)), x, t_x, age).sum())

    step = np.eye(4) * 1e-6
    numeric = [(bg_nbd(theta + e) - bg_nbd(theta - e)) / 2e-6 for e in step]
    analytic = baselines.bg_nbd_gradient(BgNbd(*np.exp(theta)), x, t_x, age)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-4)

    transactions = rng.integers(1, 6, n).astype(float)
    value = rng.gamma(3, 10, n)
    at = np.array([np.log(2.0), np.log(2.5), np.log(20.0)]) + rng.normal(0, 0.3, 3)

    def model(point: np.ndarray) -> GammaGamma:
        return GammaGamma(np.exp(point[0]), 1 + np.exp(point[1]), np.exp(point[2]))

    def gamma_gamma(point: np.ndarray) -> float:
        return float(baselines.gamma_gamma_log_likelihood(model(point), transactions, value).sum())

    numeric = [(gamma_gamma(at + e) - gamma_gamma(at - e)) / 2e-6 for e in np.eye(3) * 1e-6]
    analytic = baselines.gamma_gamma_gradient(model(at), transactions, value)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-4)


def test_fit_and_predict_scores_every_validation_row() -> None:
    rng = np.random.default_rng(2)
    n = 600
    bought = rng.random(n) < 0.6
    frequency = np.where(bought, rng.integers(0, 6, n), np.nan)
    age = np.where(bought, rng.uniform(20, 200, n), np.nan)
    recency = np.where(bought, age * rng.random(n), np.nan)
    table = _table(
        **_rfm_columns(rng, n),
        btyd_frequency=frequency.tolist(),
        btyd_recency_days=recency.tolist(),
        btyd_age_days=age.tolist(),
        btyd_monetary_value=np.where(bought, rng.gamma(2, 30, n), np.nan).tolist(),
        rfm_recency_days=(age - recency).tolist(),
        rfm_frequency=(frequency + 1).tolist(),
        rfm_monetary_value=np.where(bought, rng.gamma(2, 60, n), np.nan).tolist(),
        label_purchased=(rng.random(n) < 0.3).astype(float).tolist(),
        label_spend=rng.gamma(1, 50, n).tolist(),
        baseline_spend=rng.gamma(1, 40, n).tolist(),
    )
    predictions = baselines.fit_and_predict(
        table.slice(0, 400),
        table.slice(400),
        horizon_days=60,
        purchase_label="label_purchased",
        spend_label="label_spend",
        last_period_column="baseline_spend",
    )
    assert [p.method for p in predictions] == list(baselines.METHODS)
    last, _, _, btyd, _ = predictions
    assert last.spend.tolist() == table.column("baseline_spend").to_numpy()[400:].tolist()
    assert not last.is_probability
    for prediction in predictions:
        assert len(prediction.spend) == 200
        assert np.all(np.isfinite(prediction.spend))
        assert np.all(prediction.spend >= 0)
    never = np.isnan(frequency[400:])
    assert np.all(btyd.spend[never] == btyd.params["never_bought_mean_spend"])
    assert btyd.params["bg_nbd_r"] > 0
