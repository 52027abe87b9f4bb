"""Calendar, catalogue and users: the day weights, the categories and items with their
prices, and the users with their latent budget, activity, sign-up and churn."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from purchasing_power.generate.vocabulary import (
    _AGE_BANDS,
    _APP,
    _BRAND_PREFIXES,
    _BRAND_SUFFIXES,
    _BUDGET_LOG_SIGMA,
    _BUDGET_Z_SCALE,
    _CANDIDATES,
    _CATEGORIES,
    _HOUR_PROFILE,
    _MOBILE_WEB,
    _NEVER,
    _REGIONS,
    _SECONDS_PER_DAY,
    _WEB,
)
from purchasing_power.regimes import Acquisition, Basket, Funnel, Recording, Regime, Seasonality


@dataclass(frozen=True, eq=False)
class _Users:
    """The users, one array each by user number: latent budget (``power``) and its
    z-score, activity and purchase rates, region and age band, sign-up, active window,
    churn (ground truth: a BG/NBD dropout or a shift moves it earlier) and main channel."""

    power: np.ndarray
    z: np.ndarray
    activity: np.ndarray
    purchase_rate: np.ndarray
    region: np.ndarray
    age: np.ndarray
    signup_sec: np.ndarray
    active_from: np.ndarray
    active_to: np.ndarray
    churn_sec: np.ndarray
    channel: np.ndarray

    def __len__(self) -> int:
        return len(self.power)


@dataclass(frozen=True, eq=False)
class _Items:
    """The catalogue, one array each by item number (items sorted by category): category,
    brand (``brand_names`` by brand number), list price, price relative to the category
    (``rel``), quality, search keys (see ``_sample_from_keys``) and each category's item
    range ``[cat_start, cat_end)``, by category number."""

    category: np.ndarray
    brand: np.ndarray
    brand_names: np.ndarray
    list_price: np.ndarray
    rel: np.ndarray
    quality: np.ndarray
    keys: np.ndarray
    cat_start: np.ndarray
    cat_end: np.ndarray

    def __len__(self) -> int:
        return len(self.category)


class _Calendar:
    """Day weights (weekday, yearly, holiday, trend), normalised to mean 1, and their cumsum."""

    def __init__(self, start_date: datetime.date, days: int, season: Seasonality) -> None:
        self.start_date = start_date
        self.days = days
        self.end_sec = days * _SECONDS_PER_DAY
        d = np.arange(days)
        dates = np.datetime64(start_date, "D") + d
        weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
        wave = np.cos(2 * np.pi * (day_of_year - season.yearly_peak_day) / 365.25)
        holiday = np.exp(
            season.holiday_concentration
            * (np.cos(2 * np.pi * (day_of_year - season.holiday_day) / 365.25) - 1.0)
        )
        yearly = 1.0 + season.yearly_amplitude * wave + season.holiday_peak * holiday
        trend = 1.0 + season.trend_per_year * d / 365.0
        weights = np.array(season.weekday)[weekday] * yearly * trend
        self.weights = weights / weights.mean()
        self.grid = np.arange(days + 1, dtype=np.float64)
        self.cum = np.concatenate([[0.0], np.cumsum(self.weights)])

    def mass(self, a_days: np.ndarray) -> np.ndarray:
        """Cumulative day weight up to fractional day ``a_days``."""
        result: np.ndarray = np.interp(a_days, self.grid, self.cum)
        return result

    def inverse(self, mass: np.ndarray) -> np.ndarray:
        result: np.ndarray = np.interp(mass, self.cum, self.grid)
        return result


class _Cat:
    """The regime's categories with their price level, spread, popularity, quantity, refunds."""

    def __init__(self, basket: Basket) -> None:
        rows = [c for c in _CATEGORIES if basket.categories is None or c[0] in basket.categories]
        self.names = [c[0] for c in rows]
        self.level = np.array([c[1] for c in rows])
        self.sigma = np.array([c[2] for c in rows]) * basket.price_spread
        self.popularity = np.array([c[3] for c in rows])
        self.extra_qty = np.array([c[4] for c in rows]) * basket.quantity_scale
        self.refund_rate = np.minimum(np.array([c[5] for c in rows]) * basket.refund_scale, 0.95)
        log_level = np.log(self.level)
        self.level_z = (log_level - log_level.mean()) / (log_level.std() or 1.0)
        self.n = len(rows)


def _make_users(rng: np.random.Generator, n: int, cal: _Calendar, regime: Regime) -> _Users:
    pop = regime.population
    region = rng.choice(len(_REGIONS), size=n, p=_shares(_REGIONS))
    age = rng.choice(len(_AGE_BANDS), size=n, p=_shares(_AGE_BANDS))
    region_off = np.array([r[2] for r in _REGIONS])[region]
    age_budget = np.array([a[2] for a in _AGE_BANDS])[age]
    age_activity = np.array([a[3] for a in _AGE_BANDS])[age]
    app_affinity = np.array([a[4] for a in _AGE_BANDS])[age]

    log_power = (
        math.log(pop.budget_median)
        + region_off
        + age_budget
        + _BUDGET_LOG_SIGMA * rng.standard_normal(n)
    )
    power = np.round(np.exp(log_power), 2)
    z = (log_power - math.log(pop.budget_median)) / _BUDGET_Z_SCALE

    activity = (
        pop.activity_mean
        * rng.gamma(pop.activity_shape, 1.0 / pop.activity_shape, n)
        * np.exp(0.30 * z - 0.045 + age_activity)
    )
    # never-buyers are more common among low budgets
    buyer = rng.random(n) >= np.minimum(0.6, pop.never_buyer_share * np.exp(-0.5 * z - 0.125))
    purchase_rate = np.where(
        buyer,
        rng.gamma(pop.purchase_shape, 1.0 / pop.purchase_shape, n) * np.exp(0.30 * z - 0.045),
        0.0,
    )

    signup_sec = _signup_times(rng, n, cal, regime.acquisition, regime.recording)
    active_from = np.maximum(signup_sec, 0)
    churn_sec = _time_hazard_churn(rng, active_from, activity, regime)
    active_to = np.minimum(churn_sec, cal.end_sec)

    primary_channel = np.where(
        rng.random(n) < app_affinity, _APP, np.where(rng.random(n) < 0.7, _WEB, _MOBILE_WEB)
    )
    return _Users(
        power=power,
        z=z,
        activity=activity,
        purchase_rate=purchase_rate,
        region=region,
        age=age,
        signup_sec=signup_sec,
        active_from=active_from,
        active_to=active_to,
        churn_sec=churn_sec,
        channel=primary_channel,
    )


def _signup_times(
    rng: np.random.Generator, n: int, cal: _Calendar, acq: Acquisition, rec: Recording
) -> np.ndarray:
    """Sign-up seconds: some before the period, the rest during it following traffic.

    In-period sign-ups follow the day weights over the acquisition window (the whole period
    unless ``window_days``), tilted by ``growth`` towards the end of the period.
    """
    pre = rng.random(n) < acq.pre_period_share
    pre_days = -rng.uniform(0.0, acq.pre_period_days, n)
    window = min(acq.window_days or cal.days, cal.days)
    d = np.arange(window)
    cum = np.concatenate(
        [[0.0], np.cumsum(cal.weights[:window] * (1.0 + acq.growth * d / cal.days))]
    )
    in_days = np.interp(rng.random(n) * cum[-1], cum, cal.grid[: window + 1])
    in_sec = np.floor(in_days).astype(np.int64) * _SECONDS_PER_DAY
    in_sec += _time_of_day(rng, n)
    pre_sec = np.floor(pre_days * _SECONDS_PER_DAY).astype(np.int64)
    signup_sec = np.minimum(np.where(pre, pre_sec, in_sec), cal.end_sec - 1)
    return signup_sec // rec.time_resolution_s * rec.time_resolution_s


def _time_hazard_churn(
    rng: np.random.Generator, active_from: np.ndarray, activity: np.ndarray, regime: Regime
) -> np.ndarray:
    """Churn time under a constant hazard from the start of the active window.

    Less active users churn sooner; without a time hazard nobody churns in time (a BG/NBD
    dropout may still end a customer after a purchase, see :func:`_dropout`).
    """
    mean_days = regime.dropout.mean_lifetime_days
    if mean_days is None:
        return np.full(len(active_from), _NEVER, dtype=np.int64)
    lifetime_days = rng.exponential(mean_days * (activity / regime.population.activity_mean) ** 0.3)
    return active_from + np.ceil(lifetime_days * _SECONDS_PER_DAY).astype(np.int64)


def _time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after midnight (UTC) following the hour-of-day profile."""
    cdf = np.cumsum(_HOUR_PROFILE) / _HOUR_PROFILE.sum()
    hour = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), 23)
    return hour * 3600 + rng.integers(0, 3600, n)


def _shares(table: tuple[tuple[Any, ...], ...]) -> np.ndarray:
    p = np.array([row[1] for row in table], dtype=np.float64)
    result: np.ndarray = p / p.sum()
    return result


def _make_items(rng: np.random.Generator, n_users: int, cat: _Cat) -> _Items:
    n_items = int(np.clip(n_users // 4, 40 * cat.n, 60_000))
    base = 5
    weights = cat.popularity**0.7
    per_cat = base + rng.multinomial(n_items - base * cat.n, weights / weights.sum())
    item_cat = np.repeat(np.arange(cat.n), per_cat)
    cat_start = np.concatenate([[0], np.cumsum(per_cat)[:-1]])

    # brands: 4..12 per category, unique names, each with a price premium and Zipf popularity
    brands_per_cat = rng.integers(4, 13, cat.n)
    n_brands = int(brands_per_cat.sum())
    combos = rng.choice(len(_BRAND_PREFIXES) * len(_BRAND_SUFFIXES), n_brands, replace=False)
    brand_names = [
        _BRAND_PREFIXES[c // len(_BRAND_SUFFIXES)] + _BRAND_SUFFIXES[c % len(_BRAND_SUFFIXES)]
        for c in combos
    ]
    brand_premium = rng.normal(0.0, 0.35, n_brands)
    brand_start = np.concatenate([[0], np.cumsum(brands_per_cat)[:-1]])
    k = brands_per_cat[item_cat]
    # Zipf-ish choice of a brand within the category: floor(k * u^2) favours the first brands
    item_brand = brand_start[item_cat] + np.minimum(
        (k * rng.random(n_items) ** 2).astype(int), k - 1
    )

    sigma = cat.sigma[item_cat]
    noise = rng.standard_normal(n_items)
    log_price = np.log(cat.level[item_cat]) + brand_premium[item_brand] + sigma * noise
    list_price = _psychological_price(np.exp(log_price))
    rel = np.log(list_price / cat.level[item_cat]) / np.sqrt(sigma**2 + 0.35**2)
    quality = 0.8 * rng.standard_normal(n_items) + 0.6 * brand_premium[item_brand]
    popularity = rng.lognormal(0.0, 1.0, n_items) * np.exp(-0.3 * rel)

    # search keys: category index + within-category popularity CDF (see _sample_from_keys)
    cdf = np.cumsum(popularity)
    cat_total = np.add.reduceat(popularity, cat_start)
    cat_before = np.concatenate([[0.0], np.cumsum(cat_total)[:-1]])
    within = (cdf - cat_before[item_cat]) / cat_total[item_cat]
    within[cat_start + per_cat - 1] = 1.0
    return _Items(
        category=item_cat,
        brand=item_brand,
        brand_names=np.array(brand_names, dtype=object),
        list_price=list_price,
        rel=rel,
        quality=quality,
        keys=item_cat + within,
        cat_start=cat_start,
        cat_end=cat_start + per_cat,
    )


def _psychological_price(p: np.ndarray) -> np.ndarray:
    """Round to shop-like prices: 3.49 (below 20), 24.99 (below 200), 349.99 (above)."""
    cheap = np.maximum(np.round(p * 10.0) / 10.0 - 0.01, 0.29)
    mid = np.round(p) - 0.01
    high = np.round(p / 10.0) * 10.0 - 0.01
    return np.round(np.where(p < 20, cheap, np.where(p < 200, mid, high)), 2)


def _user_category_keys(rng: np.random.Generator, users: _Users, cat: _Cat) -> np.ndarray:
    """Per-user category preferences as flat search keys ``user + cdf``.

    Preference = category popularity x individual gamma taste x a tilt towards expensive
    categories for users with a high budget.
    """
    n = len(users.z)
    taste = rng.gamma(0.6, 1.0, (n, cat.n))
    pref = cat.popularity[None, :] * taste * np.exp(0.45 * users.z[:, None] * cat.level_z)
    cdf = np.cumsum(pref, axis=1)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    result: np.ndarray = (np.arange(n, dtype=np.float64)[:, None] + cdf).ravel()
    return result


def _sample_from_keys(rng: np.random.Generator, keys: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Sample one element per row of a flat, grouped CDF: ``keys = group + cdf_within``.

    Returns the flat position of the chosen element (inside the group's block).
    """
    return np.searchsorted(keys, group + rng.random(len(group)), side="right")


def _sample_categories(
    rng: np.random.Generator, prefs_keys: np.ndarray, user: np.ndarray, n_cat: int
) -> np.ndarray:
    pos = _sample_from_keys(rng, prefs_keys, user)
    result: np.ndarray = np.minimum(pos - user * n_cat, n_cat - 1).astype(np.int16)
    return result


def _choose_items(
    rng: np.random.Generator, items: _Items, item_cat: np.ndarray, user_z: np.ndarray
) -> np.ndarray:
    """Draw a few popular candidates in the category and view the best price-tier fit."""
    n = len(item_cat)
    cand = np.empty((n, _CANDIDATES), dtype=np.int64)
    lo = items.cat_start[item_cat]
    hi = items.cat_end[item_cat] - 1
    for k in range(_CANDIDATES):
        cand[:, k] = np.clip(_sample_from_keys(rng, items.keys, item_cat), lo, hi)
    fit = -1.3 * np.abs(items.rel[cand] - 0.6 * user_z[:, None])
    best = np.argmax(fit + rng.gumbel(size=(n, _CANDIDATES)), axis=1)
    result: np.ndarray = cand[np.arange(n), best]
    return result


def _funnel_probabilities(
    power: np.ndarray, purchase_rate: np.ndarray, price: np.ndarray, funnel: Funnel
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Click, cart (given click), remove (given cart) and buy (given kept in cart)."""
    headroom = np.log(power) - np.log(price)
    afford = 1.0 / (1.0 + np.exp(-(1.0 + 1.1 * headroom)))
    p_click = np.full(len(price), funnel.click)
    p_cart = funnel.cart * (0.35 + 0.65 * afford)
    p_remove = funnel.remove + funnel.remove_unaffordable * (1.0 - afford)
    p_buy = np.minimum(funnel.buy_cap, funnel.buy * purchase_rate * afford)
    return p_click, p_cart, p_remove, p_buy
