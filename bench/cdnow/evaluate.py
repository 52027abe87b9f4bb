"""The simple methods a model must beat on a real shop, fitted on the calibration period
of a purchase log (the metrics every method is judged by are ``bench/holdout.py``'s).

``rfm_decay``
    The customer's spend rate (calibration dollars per day since the first purchase)
    x horizon x 0.5 ^ (weeks since the last purchase / 13).
``bg_nbd_gamma_gamma``
    Classic, customer-level buy-till-you-die (as Fader, Hardie & Lee 2005 fit CDNOW):
    time in weeks, a transaction is a purchase date, x repeat purchase dates, t_x the
    week of the last, T the calibration weeks since the first (to the day before
    ``as_of``); BG/NBD by maximum likelihood for the expected transactions in the
    horizon, Gamma-Gamma on the mean value of the repeat purchase dates.
``lightgbm_rfm``
    A plain LightGBM tweedie on twelve RFM features with fixed parameters, trained on
    cutoffs inside the calibration period. Its label window is the horizon where the
    calibration holds three cutoffs 14 days apart with 28 days of history and complete
    labels; otherwise the longest window that does, the prediction scaled by
    horizon / window.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from cdnow.data import Customers, Purchases, epoch_day
from holdout import Prediction
from purchasing_power import baselines

RFM_DECAY = "rfm_decay"
BTYD = "bg_nbd_gamma_gamma"
LIGHTGBM_RFM = "lightgbm_rfm"
HALF_LIFE_WEEKS = 13.0

# Fader, Hardie & Lee (2005), BG/NBD on the 1/10 sample of CDNOW, 39 calibration weeks.
PUBLISHED_BG_NBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}

LIGHTGBM_RFM_PARAMS = {
    "objective": "tweedie",
    "tweedie_variance_power": 1.5,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "seed": 42,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "verbosity": -1,
}
LIGHTGBM_RFM_ROUNDS = 300
CUTOFF_SPACING_DAYS = 14
MIN_HISTORY_DAYS = 28
CUTOFFS = 3


def rfm_decay(customers: Customers, *, as_of: dt.date, horizon_days: int) -> Prediction:
    start = epoch_day(as_of)
    tenure = np.maximum(start - customers.first_day, 1)
    weeks_since = (start - customers.last_day) / 7.0
    spend = customers.spend / tenure * horizon_days * 0.5 ** (weeks_since / HALF_LIFE_WEEKS)
    return Prediction(RFM_DECAY, spend, spend)


def btyd_inputs(
    customers: Customers, *, as_of: dt.date
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in weeks, the calibration ending the day before ``as_of``."""
    end = epoch_day(as_of) - 1
    x = (customers.purchase_days - 1).astype(np.float64)
    t_x = (customers.last_day - customers.first_day) / 7.0
    age = (end - customers.first_day) / 7.0
    return x, t_x, age


def bg_nbd_gamma_gamma(customers: Customers, *, as_of: dt.date, horizon_days: int) -> Prediction:
    x, t_x, age = btyd_inputs(customers, as_of=as_of)
    model = baselines.fit_bg_nbd(x, t_x, age)
    repeat = x > 0
    value = customers.repeat_mean_value
    valued = repeat & (value > 0)  # a zero-dollar mean has no Gamma likelihood
    gamma_gamma = baselines.fit_gamma_gamma(x[valued], value[valued])
    population = gamma_gamma.p * gamma_gamma.gamma / (gamma_gamma.q - 1)
    per_purchase = np.full(len(x), population)
    per_purchase[repeat] = baselines.expected_purchase_value(gamma_gamma, x[repeat], value[repeat])
    horizon = horizon_days / 7.0
    transactions = baselines.expected_purchases(model, x, t_x, age, horizon=horizon)
    probability = baselines.probability_of_purchase(model, x, t_x, age, horizon=horizon)
    note = (
        f"r {model.r:.3f}, alpha {model.alpha:.3f}, a {model.a:.3f}, b {model.b:.3f}; "
        f"p {gamma_gamma.p:.3f}, q {gamma_gamma.q:.3f}, gamma {gamma_gamma.gamma:.3f}"
    )
    return Prediction(BTYD, transactions * per_purchase, probability, note)


def check_published_fit(customers: Customers, *, as_of: dt.date, tolerance: float) -> dict:
    """BG/NBD fitted on ``customers`` (the 1/10 sample) against the published parameters:
    each within ``tolerance`` relative."""
    x, t_x, age = btyd_inputs(customers, as_of=as_of)
    model = baselines.fit_bg_nbd(x, t_x, age)
    fitted = {"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b}
    worst = max(abs(fitted[k] / PUBLISHED_BG_NBD[k] - 1) for k in fitted)
    return {"customers": len(x), "fitted": fitted, "published": PUBLISHED_BG_NBD,
            "max_relative_difference": worst, "tolerance": tolerance,
            "within_tolerance": worst <= tolerance}  # fmt: skip


# --------------------------------------------------------------------------------------
# A plain LightGBM on RFM features
# --------------------------------------------------------------------------------------

RFM_FEATURES = (
    "days_since_last_purchase",
    "days_since_first_purchase",
    "count_purchase_days",
    "count_purchase_days_30d",
    "count_purchase_days_90d",
    "sum_spend",
    "sum_spend_30d",
    "sum_spend_90d",
    "mean_spend_per_purchase_day",
    "max_spend_per_purchase_day",
    "sum_quantity",
    "mean_days_between_purchases",
)


def rfm_features(purchases: Purchases, ids: np.ndarray, *, cutoff: int) -> np.ndarray:
    """The twelve RFM features of ``ids`` at ``cutoff`` (a day number) from purchases
    strictly before it; NaN where a customer has none."""
    before = purchases.select(purchases.day < cutoff)
    index = {customer: i for i, customer in enumerate(ids)}
    rows = np.array([index.get(c, -1) for c in before.customer_id], dtype=np.int64)
    keep = rows >= 0
    rows, day, amount, quantity = (
        rows[keep],
        before.day[keep],
        before.amount[keep],
        before.quantity[keep],
    )
    n = len(ids)
    features = np.full((n, len(RFM_FEATURES)), np.nan)
    if len(rows) == 0:
        return features
    # purchase dates per customer
    keys = rows * 100_000 + (day - day.min())
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    day_value = np.bincount(inverse, weights=amount)
    day_row = unique_keys // 100_000
    day_day = unique_keys % 100_000 + day.min()
    has = np.bincount(day_row, minlength=n) > 0
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, day_row, day_day)
    np.maximum.at(last, day_row, day_day)
    days = np.bincount(day_row, minlength=n).astype(np.float64)
    age = cutoff - day_day

    def count(window: int) -> np.ndarray:
        return np.bincount(day_row, weights=(age <= window).astype(float), minlength=n)

    def total(window: int | None) -> np.ndarray:
        weights = day_value if window is None else day_value * (age <= window)
        return np.bincount(day_row, weights=weights, minlength=n)

    largest = np.zeros(n)
    np.maximum.at(largest, day_row, day_value)
    columns = [
        cutoff - last,
        cutoff - first,
        days,
        count(30),
        count(90),
        total(None),
        total(30),
        total(90),
        total(None) / np.maximum(days, 1),
        largest,
        np.bincount(rows, weights=quantity.astype(float), minlength=n),
        np.where(days > 1, (last - first) / np.maximum(days - 1, 1), np.nan),
    ]
    features[has] = np.column_stack(columns)[has]
    return features


def label_window(*, first_day: int, as_of_day: int, horizon_days: int) -> int:
    """The horizon where three cutoffs fit with history and complete labels, else the
    longest window that leaves room for them."""
    room = as_of_day - first_day - MIN_HISTORY_DAYS - (CUTOFFS - 1) * CUTOFF_SPACING_DAYS
    if room < 1:
        raise ValueError(f"{as_of_day - first_day} days of history leave no cutoff")
    return min(horizon_days, room)


def lightgbm_rfm(
    purchases: Purchases, customers: Customers, *, as_of: dt.date, horizon_days: int
) -> Prediction:
    import lightgbm as lgb

    as_of_day = epoch_day(as_of)
    calibration = purchases.select(purchases.day < as_of_day)
    window = label_window(
        first_day=int(calibration.day.min()), as_of_day=as_of_day, horizon_days=horizon_days
    )
    latest = as_of_day - window
    matrices, labels = [], []
    for k in range(CUTOFFS):
        cutoff = latest - k * CUTOFF_SPACING_DAYS
        ids = np.unique(calibration.customer_id[calibration.day < cutoff])
        matrices.append(rfm_features(calibration, ids, cutoff=cutoff))
        future = calibration.select(
            (calibration.day >= cutoff) & (calibration.day < cutoff + window)
        )
        index = {customer: i for i, customer in enumerate(ids)}
        label = np.zeros(len(ids))
        for customer, amount in zip(future.customer_id, future.amount, strict=True):
            i = index.get(customer)
            if i is not None:
                label[i] += amount
        labels.append(label)
    dataset = lgb.Dataset(
        np.vstack(matrices), np.concatenate(labels), feature_name=list(RFM_FEATURES)
    )
    booster = lgb.train(LIGHTGBM_RFM_PARAMS, dataset, num_boost_round=LIGHTGBM_RFM_ROUNDS)
    scoring = rfm_features(calibration, customers.customer_id, cutoff=as_of_day)
    spend = booster.predict(scoring) * (horizon_days / window)
    note = f"label window {window} days x {horizon_days / window:.3f}; {CUTOFFS} cutoffs"
    return Prediction(LIGHTGBM_RFM, spend, spend, note)
