"""The baselines the model must beat, fitted on the training cutoffs and scored on the
validation rows: pure functions on numpy arrays and Arrow tables.

``last_period_spend``
    Net spend over the horizon's length before the cutoff, as the prediction of net
    spend over the horizon after it (and as a ranking score for AUC).
``rfm``
    Recency, frequency and monetary value scored 1-5 by the training buyers'
    quintiles and summed (3-15; 0 for users who never bought). Each score predicts the
    mean spend and purchase rate its users had after the training cutoffs.
``rfm_decay``
    The customer's spend rate (net spend per day since the first purchase) x horizon x
    0.5 ^ (days since the last purchase / 91): recency-weighted RFM in three lines,
    scaled by one factor so that it sums to the training labels (which moves no rank).
    Users who never bought get the mean spend never-buyers had after the training
    cutoffs. A ranking score, not a probability.
``bg_nbd_gamma_gamma``
    The buy-till-you-die pair: BG/NBD (Fader, Hardie & Lee 2005) for how many purchase
    days follow, Gamma-Gamma (Fader, Hardie & Lee 2005; Colombo & Jiang 1999) for the
    value of each, both fitted by maximum likelihood. A purchase day is one
    transaction; the clock starts at the first purchase. P(at least one purchase day
    in the horizon) has a closed form (below) and ranks users for AUC. Users who never
    bought are outside the model: they get the purchase rate and mean spend that
    never-buyers had after the training cutoffs.
``lightgbm_rfm``
    A plain LightGBM on a dozen RFM columns of ``user_features`` (recency, tenure,
    frequency, monetary value, orders and spend over 30, 90 and 365 days, order size,
    the usual gap between purchases: ``LIGHTGBM_RFM_COLUMNS``) with fixed parameters
    and a fixed number of rounds, no early stopping, no tuning, no monotone
    constraints: a binary model of P(any purchase) and a tweedie one of spend over
    every row. What a shop could fit in an afternoon.

The inputs are columns of ``training_examples`` computed in SQL: the ``btyd_*``,
``rfm_*`` and ``baseline_spend_last_<h>d`` columns beside the features, and the RFM
columns of ``user_features`` that ``lightgbm_rfm`` reads (named here, so that the
analyst's choice of model features never changes the baseline).

``rfm_decay``'s purchase probability is a logistic fit, on the training cutoffs, of
whether the user bought on the log of its spend prediction: increasing, so it ranks
the buyers as the spend does. ``rfm_decay`` and ``bg_nbd_gamma_gamma`` can score users
(``fallback``), as ``lightgbm_rfm`` can (it is registered like a model); the others
are yardsticks only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import optimize, special

LAST_PERIOD_SPEND = "last_period_spend"
RFM = "rfm"
RFM_DECAY = "rfm_decay"
BTYD = "bg_nbd_gamma_gamma"
LIGHTGBM_RFM = "lightgbm_rfm"
METHODS = (LAST_PERIOD_SPEND, RFM, RFM_DECAY, BTYD, LIGHTGBM_RFM)
# the baselines that can score users where they beat every candidate model
SCORING_METHODS = (RFM_DECAY, BTYD, LIGHTGBM_RFM)
RFM_DECAY_HALF_LIFE_DAYS = 91.0

# lightgbm_rfm's inputs: user_features columns, with the reason text its scores show
LIGHTGBM_RFM_COLUMNS = (
    ("days_since_last_purchase", "Days since the last purchase"),
    ("days_since_first_purchase", "Days since the first purchase"),
    ("count_purchase_days_lifetime", "Days with a purchase, lifetime"),
    ("sum_purchase_amount_lifetime", "Amount bought, lifetime"),
    ("count_orders_30d", "Orders in the last 30 days"),
    ("count_orders_90d", "Orders in the last 90 days"),
    ("count_orders_365d", "Orders in the last 365 days"),
    ("sum_purchase_amount_30d", "Amount bought in the last 30 days"),
    ("sum_purchase_amount_90d", "Amount bought in the last 90 days"),
    ("sum_purchase_amount_365d", "Amount bought in the last 365 days"),
    ("avg_order_amount_lifetime", "Average order amount, lifetime"),
    ("max_order_amount_lifetime", "Largest order amount, lifetime"),
    ("avg_days_between_purchases_lifetime", "Average days between purchases"),
)
LIGHTGBM_RFM_ROUNDS = 100
LIGHTGBM_RFM_PARAMS = {
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "feature_fraction": 1.0,
    "lambda_l2": 1.0,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}

# Converge well past the default tolerances: inputs summed by the warehouse in another
# order differ in the last bits, and a loose stop turns that into a visible difference.
_TIGHT = {"ftol": 1e-14, "gtol": 1e-10, "maxiter": 2000}

BTYD_COLUMNS = ("btyd_frequency", "btyd_recency_days", "btyd_age_days", "btyd_monetary_value")
RFM_COLUMNS = ("rfm_recency_days", "rfm_frequency", "rfm_monetary_value")
# the columns of training_examples the baselines read
COLUMNS = BTYD_COLUMNS + RFM_COLUMNS + tuple(name for name, _ in LIGHTGBM_RFM_COLUMNS)


@dataclass(frozen=True)
class BaselinePrediction:
    """One baseline's predictions on the validation rows.

    ``purchase_score`` ranks users for AUC; it is a probability (and gets a log loss)
    only where ``is_probability``. ``params`` are the fitted parameters, for the card.
    """

    method: str
    purchase_score: np.ndarray
    is_probability: bool
    spend: np.ndarray
    params: dict[str, float]


@dataclass(frozen=True)
class BgNbd:
    """BG/NBD: purchase rate ~ Gamma(r, alpha) per day, drop-out after a purchase ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGamma:
    """Gamma-Gamma: a purchase's value ~ Gamma(p, nu), nu ~ Gamma(q, gamma) per user."""

    p: float
    q: float
    gamma: float


def _column(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.schema.names:
        raise KeyError(f"training_examples has no column {name!r} (a baseline input)")
    result: np.ndarray = pc.cast(table.column(name), pa.float64()).to_numpy(zero_copy_only=False)
    return result


# --------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------


def _bg_nbd_terms(
    model: BgNbd, x: np.ndarray, t_x: np.ndarray, age: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log of the common factor, of the 'alive at age' and of the 'dropped out' term."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    common = (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.betaln(a, b + x)
        - special.betaln(a, b)
    )
    alive = -(r + x) * np.log(alpha + age)
    with np.errstate(divide="ignore", invalid="ignore"):
        dropped = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return common, alive, dropped


def bg_nbd_log_likelihood(
    model: BgNbd, x: np.ndarray, t_x: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """Log-likelihood of each user's (repeat purchases, recency, age)."""
    common, alive, dropped = _bg_nbd_terms(model, x, t_x, age)
    result: np.ndarray = common + np.logaddexp(alive, dropped)
    return result


def bg_nbd_gradient(model: BgNbd, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """d(sum of the log-likelihoods) / d(log r, log alpha, log a, log b)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    _, alive, dropped = _bg_nbd_terms(model, x, t_x, age)
    total = np.logaddexp(alive, dropped)
    w_alive, w_dropped = np.exp(alive - total), np.exp(dropped - total)
    repeat = x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d_r = (
            special.digamma(r + x)
            - special.digamma(r)
            + np.log(alpha)
            - w_alive * np.log(alpha + age)
            - np.where(repeat, w_dropped * np.log(alpha + t_x), 0.0)
        )
        d_alpha = (
            r / alpha
            - w_alive * (r + x) / (alpha + age)
            - np.where(repeat, w_dropped * (r + x) / (alpha + t_x), 0.0)
        )
        d_a = (
            special.digamma(a + b)
            - special.digamma(a + b + x)
            + np.where(repeat, w_dropped / a, 0.0)
        )
        d_b = (
            special.digamma(b + x)
            - special.digamma(a + b + x)
            - special.digamma(b)
            + special.digamma(a + b)
            - np.where(repeat, w_dropped / np.maximum(b + x - 1, 1e-300), 0.0)
        )
    return np.array([r * d_r.sum(), alpha * d_alpha.sum(), a * d_a.sum(), b * d_b.sum()])


def canonical_order(*columns: np.ndarray) -> np.ndarray:
    """The positions that sort rows by their values, the first column first.

    The fits below sum a term per user in this order, so that they are a function of
    the users' histories alone, not of the order the rows came in: the warehouse hands
    the scoring cutoff's rows over in no fixed order, and a float sum in another order
    differs in its last bits, which L-BFGS-B's stopping test turns into fitted
    parameters that differ in the fifth digit. Rows that tie are equal, so which
    comes first changes nothing."""
    return np.lexsort(columns[::-1])


def fit_bg_nbd(x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> BgNbd:
    """Maximum likelihood over log-parameters (L-BFGS-B from a fixed start, with the
    analytic gradient), on the users in ``canonical_order``."""
    order = canonical_order(x, t_x, age)
    x, t_x, age = x[order], t_x[order], age[order]

    def negative(theta: np.ndarray) -> tuple[float, np.ndarray]:
        model = BgNbd(*np.exp(theta))
        value = -float(np.sum(bg_nbd_log_likelihood(model, x, t_x, age))) / len(x)
        return value, -bg_nbd_gradient(model, x, t_x, age) / len(x)

    start = np.log([1.0, float(np.mean(age)) or 1.0, 1.0, 1.0])
    fitted = optimize.minimize(
        negative, start, jac=True, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 4,
        options=_TIGHT,
    )  # fmt: skip
    return BgNbd(*(float(value) for value in np.exp(fitted.x)))


def probability_of_purchase(
    model: BgNbd, x: np.ndarray, t_x: np.ndarray, age: np.ndarray, *, horizon: float
) -> np.ndarray:
    """P(at least one purchase in (age, age + horizon] | history).

    An alive user makes no purchase in the horizon with probability exp(-lambda *
    horizon) and drops out only right after a purchase, so integrating over the
    posterior of lambda and p:
    P(none) = (A(age + horizon) + D) / (A(age) + D), with A(s) the alive term at s and
    D the dropped-out term of the likelihood.
    """
    _, alive, dropped = _bg_nbd_terms(model, x, t_x, age)
    alive_later = -(model.r + x) * np.log(model.alpha + age + horizon)
    log_none = np.logaddexp(alive_later, dropped) - np.logaddexp(alive, dropped)
    result: np.ndarray = -np.expm1(log_none)
    return result


def expected_purchases(
    model: BgNbd, x: np.ndarray, t_x: np.ndarray, age: np.ndarray, *, horizon: float
) -> np.ndarray:
    """E[purchases in (age, age + horizon] | history] (Fader, Hardie & Lee 2005, eq. 10)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    z = horizon / (alpha + age + horizon)
    hyper = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    first = (a + b + x - 1) / (a - 1)
    second = 1 - ((alpha + age) / (alpha + age + horizon)) ** (r + x) * hyper
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(
            x > 0,
            a / np.maximum(b + x - 1, 1e-300) * ((alpha + age) / (alpha + t_x)) ** (r + x),
            0.0,
        )
    result: np.ndarray = np.maximum(first * second / (1 + ratio), 0.0)
    return result


# --------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(
    model: GammaGamma, transactions: np.ndarray, mean_value: np.ndarray
) -> np.ndarray:
    """Log-likelihood of each user's mean value over ``transactions`` purchases."""
    p, q, gamma = model.p, model.q, model.gamma
    px = p * transactions
    result: np.ndarray = (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(mean_value)
        + px * np.log(transactions)
        - (px + q) * np.log(gamma + mean_value * transactions)
    )
    return result


def gamma_gamma_gradient(
    model: GammaGamma, transactions: np.ndarray, mean_value: np.ndarray
) -> np.ndarray:
    """d(sum of the log-likelihoods) / d(log p, log(q - 1), log gamma)."""
    p, q, gamma = model.p, model.q, model.gamma
    px = p * transactions
    spent = np.log(gamma + mean_value * transactions)
    d_p = transactions * (
        special.digamma(px + q)
        - special.digamma(px)
        + np.log(mean_value)
        + np.log(transactions)
        - spent
    )
    d_q = special.digamma(px + q) - special.digamma(q) + np.log(gamma) - spent
    d_gamma = q / gamma - (px + q) / (gamma + mean_value * transactions)
    return np.array([p * d_p.sum(), (q - 1) * d_q.sum(), gamma * d_gamma.sum()])


def fit_gamma_gamma(transactions: np.ndarray, mean_value: np.ndarray) -> GammaGamma:
    """Maximum likelihood with q > 1 (so that the expected value exists), with the
    analytic gradient, on the users in ``canonical_order``."""
    order = canonical_order(transactions, mean_value)
    transactions, mean_value = transactions[order], mean_value[order]

    def negative(theta: np.ndarray) -> tuple[float, np.ndarray]:
        model = GammaGamma(np.exp(theta[0]), 1.0 + np.exp(theta[1]), np.exp(theta[2]))
        value = -float(np.sum(gamma_gamma_log_likelihood(model, transactions, mean_value)))
        gradient = -gamma_gamma_gradient(model, transactions, mean_value)
        return value / len(transactions), gradient / len(transactions)

    start = np.array([0.0, 0.0, np.log(float(np.mean(mean_value)))])
    fitted = optimize.minimize(
        negative, start, jac=True, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 3,
        options=_TIGHT,
    )  # fmt: skip
    p, q_minus_one, gamma = np.exp(fitted.x)
    return GammaGamma(float(p), float(1.0 + q_minus_one), float(gamma))


def expected_purchase_value(
    model: GammaGamma, transactions: np.ndarray, mean_value: np.ndarray
) -> np.ndarray:
    """E[value of a future purchase | mean value over ``transactions`` purchases]."""
    p, q, gamma = model.p, model.q, model.gamma
    result: np.ndarray = p * (gamma + transactions * mean_value) / (p * transactions + q - 1)
    return result


# --------------------------------------------------------------------------------------
# The three baselines
# --------------------------------------------------------------------------------------


def _btyd(
    training: pa.Table, validation: pa.Table, *, labels: _Labels, horizon: float
) -> BaselinePrediction:
    def inputs(table: pa.Table) -> tuple[np.ndarray, ...]:
        return tuple(_column(table, name) for name in BTYD_COLUMNS)

    x, t_x, age, value = inputs(training)
    bought = ~np.isnan(x)
    bg_nbd = fit_bg_nbd(x[bought], t_x[bought], age[bought])
    valued = bought & (value > 0)
    gamma_gamma = fit_gamma_gamma(x[valued] + 1, value[valued])
    never = ~bought
    never_rate = float(labels.purchased[never].mean()) if never.any() else 0.0
    never_spend = float(labels.spend[never].mean()) if never.any() else 0.0

    vx, vt_x, vage, vvalue = inputs(validation)
    known = ~np.isnan(vx)
    probability = np.full(len(vx), never_rate)
    spend = np.full(len(vx), never_spend)
    args = (bg_nbd, vx[known], vt_x[known], vage[known])
    probability[known] = probability_of_purchase(*args, horizon=horizon)
    per_purchase = expected_purchase_value(
        gamma_gamma, vx[known] + 1, np.maximum(np.nan_to_num(vvalue[known]), 0.0)
    )
    spend[known] = expected_purchases(*args, horizon=horizon) * per_purchase
    params = {
        "bg_nbd_r": bg_nbd.r,
        "bg_nbd_alpha": bg_nbd.alpha,
        "bg_nbd_a": bg_nbd.a,
        "bg_nbd_b": bg_nbd.b,
        "gamma_gamma_p": gamma_gamma.p,
        "gamma_gamma_q": gamma_gamma.q,
        "gamma_gamma_gamma": gamma_gamma.gamma,
        "never_bought_purchase_rate": never_rate,
        "never_bought_mean_spend": never_spend,
    }
    return BaselinePrediction(BTYD, probability, True, spend, params)


def quintile_scores(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """1-5 by the quintile edges (higher value, higher score); 0 where missing."""
    scores = 1 + np.searchsorted(edges, values, side="right")
    return np.where(np.isnan(values), 0, scores)


def _rfm(training: pa.Table, validation: pa.Table, *, labels: _Labels) -> BaselinePrediction:
    def components(table: pa.Table) -> list[np.ndarray]:
        recency, frequency, monetary = (_column(table, name) for name in RFM_COLUMNS)
        return [-recency, frequency, monetary]  # recent is good: score minus days

    quintiles = np.array([0.2, 0.4, 0.6, 0.8])
    train_parts = components(training)
    edges = [np.quantile(part[~np.isnan(part)], quintiles) for part in train_parts]

    def score(parts: list[np.ndarray]) -> np.ndarray:
        scores = [quintile_scores(part, edge) for part, edge in zip(parts, edges, strict=True)]
        total = scores[0] + scores[1] + scores[2]
        return np.where(np.isnan(parts[0]), 0, total)

    train_score = score(train_parts)
    valid_score = score(components(validation))
    probability = np.full(len(valid_score), float(labels.purchased.mean()))
    spend = np.full(len(valid_score), float(labels.spend.mean()))
    for cell in np.unique(train_score):
        members = train_score == cell
        probability[valid_score == cell] = labels.purchased[members].mean()
        spend[valid_score == cell] = labels.spend[members].mean()
    params: dict[str, float] = {}
    for name, edge in zip(("recency_days", "frequency", "monetary_value"), edges, strict=True):
        sign = -1.0 if name == "recency_days" else 1.0
        params.update({f"{name}_q{k}": sign * float(value) for k, value in enumerate(edge, 1)})
    return BaselinePrediction(RFM, probability, True, spend, params)


def rfm_decay_spend(
    monetary: np.ndarray, age_days: np.ndarray, recency_days: np.ndarray, *, horizon: float
) -> np.ndarray:
    """Spend rate since the first purchase x horizon x 0.5 ^ (recency / half-life);
    NaN where the user never bought."""
    rate = np.maximum(monetary, 0.0) / np.maximum(age_days, 1.0)
    result: np.ndarray = rate * horizon * 0.5 ** (recency_days / RFM_DECAY_HALF_LIFE_DAYS)
    return result


@dataclass(frozen=True)
class RfmDecay:
    """rfm_decay fitted on training cutoffs: the scale that makes its spend sum to the
    labels, and the logistic curve of P(any purchase) on log(1 + spend)."""

    window_days: float
    scale: float
    never_bought_mean_spend: float
    never_bought_purchase_rate: float
    logit_intercept: float
    logit_slope: float
    half_life_days: float = RFM_DECAY_HALF_LIFE_DAYS

    def predict(
        self, monetary: np.ndarray, age_days: np.ndarray, recency_days: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(spend, P(any purchase)) over the window; never-buyers (NaN inputs) get the
        never-buyers' mean spend and purchase rate."""
        raw = rfm_decay_spend(monetary, age_days, recency_days, horizon=self.window_days)
        never = np.isnan(raw)
        spend = np.where(never, self.never_bought_mean_spend, raw * self.scale)
        logit = self.logit_intercept + self.logit_slope * np.log1p(np.where(never, 0.0, spend))
        probability = np.where(never, self.never_bought_purchase_rate, special.expit(logit))
        return spend, probability

    def params(self) -> dict[str, float]:
        return {
            "window_days": self.window_days,
            "scale": self.scale,
            "half_life_days": self.half_life_days,
            "never_bought_mean_spend": self.never_bought_mean_spend,
            "never_bought_purchase_rate": self.never_bought_purchase_rate,
            "logit_intercept": self.logit_intercept,
            "logit_slope": self.logit_slope,
        }


def _logistic_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(intercept, slope >= 0) of the logistic regression of ``y`` on ``x``."""

    def negative(theta: np.ndarray) -> tuple[float, np.ndarray]:
        logit = theta[0] + theta[1] * x
        loss = np.mean(np.logaddexp(0.0, logit) - y * logit)
        residual = special.expit(logit) - y
        return float(loss), np.array([residual.mean(), (residual * x).mean()])

    rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    start = np.array([np.log(rate / (1 - rate)), 0.0])
    fitted = optimize.minimize(
        negative, start, jac=True, method="L-BFGS-B", bounds=[(None, None), (0.0, None)],
        options=_TIGHT,
    )  # fmt: skip
    return float(fitted.x[0]), float(fitted.x[1])


def _rfm_decay_inputs(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        _column(table, "rfm_monetary_value"),
        _column(table, "btyd_age_days"),
        _column(table, "rfm_recency_days"),
    )


def fit_rfm_decay(
    training: pa.Table, *, purchased: np.ndarray, spend: np.ndarray, horizon: float
) -> RfmDecay:
    """rfm_decay's scale and purchase curve on the training cutoffs' rows and their
    labels."""
    labels = _Labels(purchased=purchased, spend=spend)
    train_raw = rfm_decay_spend(*_rfm_decay_inputs(training), horizon=horizon)
    bought = ~np.isnan(train_raw)
    predicted = float(train_raw[bought].sum())
    scale = float(labels.spend[bought].sum()) / predicted if predicted > 0 else 1.0
    never = ~bought
    intercept, slope = (
        _logistic_fit(np.log1p(train_raw[bought] * scale), labels.purchased[bought])
        if bought.any()
        else (0.0, 0.0)
    )
    return RfmDecay(
        window_days=horizon,
        scale=scale,
        never_bought_mean_spend=float(labels.spend[never].mean()) if never.any() else 0.0,
        never_bought_purchase_rate=float(labels.purchased[never].mean()) if never.any() else 0.0,
        logit_intercept=intercept,
        logit_slope=slope,
    )


def _rfm_decay(
    training: pa.Table, validation: pa.Table, *, labels: _Labels, horizon: float
) -> BaselinePrediction:
    fitted = fit_rfm_decay(
        training, purchased=labels.purchased, spend=labels.spend, horizon=horizon
    )
    spend, probability = fitted.predict(*_rfm_decay_inputs(validation))
    return BaselinePrediction(RFM_DECAY, probability, True, spend, fitted.params())


# --------------------------------------------------------------------------------------
# A plain LightGBM on RFM columns
# --------------------------------------------------------------------------------------


def lightgbm_rfm_matrix(table: pa.Table | pa.RecordBatch) -> np.ndarray:
    """``LIGHTGBM_RFM_COLUMNS`` of ``table`` as a float64 matrix (nulls NaN)."""
    return np.column_stack([_column(table, name) for name, _ in LIGHTGBM_RFM_COLUMNS])


def lightgbm_rfm_params(objective: str, *, seed: int, num_threads: int) -> dict[str, Any]:
    params = {**LIGHTGBM_RFM_PARAMS, "objective": objective, "seed": seed,
              "num_threads": num_threads}  # fmt: skip
    if objective == "tweedie":
        params["tweedie_variance_power"] = 1.5
    return params


def fit_lightgbm_rfm(
    features: np.ndarray, purchased: np.ndarray, spend: np.ndarray, *, seed: int, num_threads: int
) -> tuple[lgb.Booster, lgb.Booster]:
    """(purchase, spend) boosters: fixed parameters, ``LIGHTGBM_RFM_ROUNDS`` rounds each."""
    names = [name for name, _ in LIGHTGBM_RFM_COLUMNS]
    boosters = []
    for objective, label in (("binary", purchased), ("tweedie", spend)):
        dataset = lgb.Dataset(features, label=label, feature_name=names)
        params = lightgbm_rfm_params(objective, seed=seed, num_threads=num_threads)
        boosters.append(lgb.train(params, dataset, num_boost_round=LIGHTGBM_RFM_ROUNDS))
    return boosters[0], boosters[1]


def _lightgbm_rfm(
    training: pa.Table, validation: pa.Table, *, labels: _Labels, seed: int, num_threads: int
) -> BaselinePrediction:
    purchase, spend = fit_lightgbm_rfm(
        lightgbm_rfm_matrix(training), labels.purchased, labels.spend, seed=seed,
        num_threads=num_threads,
    )  # fmt: skip
    rows = lightgbm_rfm_matrix(validation)
    fixed = {k: float(v) for k, v in LIGHTGBM_RFM_PARAMS.items() if k != "verbosity"}
    params = {"rounds": float(LIGHTGBM_RFM_ROUNDS), **fixed}
    return BaselinePrediction(
        LIGHTGBM_RFM,
        cast(np.ndarray, purchase.predict(rows)),
        True,
        cast(np.ndarray, spend.predict(rows)),
        params,
    )


@dataclass(frozen=True)
class _Labels:
    purchased: np.ndarray
    spend: np.ndarray


def fit_and_predict(
    training: pa.Table,
    validation: pa.Table,
    *,
    horizon_days: int,
    purchase_label: str,
    spend_label: str,
    last_period_column: str,
    seed: int = 42,
    num_threads: int = 1,
) -> tuple[BaselinePrediction, ...]:
    """Fit every baseline on ``training`` rows and predict the ``validation`` rows
    (``seed`` and ``num_threads``: lightgbm_rfm's)."""
    labels = _Labels(
        purchased=_column(training, purchase_label),
        spend=_column(training, spend_label),
    )
    last_period = np.nan_to_num(_column(validation, last_period_column))
    return (
        BaselinePrediction(LAST_PERIOD_SPEND, last_period, False, last_period, {}),
        _rfm(training, validation, labels=labels),
        _rfm_decay(training, validation, labels=labels, horizon=float(horizon_days)),
        _btyd(training, validation, labels=labels, horizon=float(horizon_days)),
        _lightgbm_rfm(training, validation, labels=labels, seed=seed, num_threads=num_threads),
    )
