"""Synthetic e-commerce behaviour events with a known latent purchasing power.

Generative story (the full page is ``docs/generator.md``):

1. **Users** get a log-normal latent budget (``latent_power``, shifted by region and age
   band), a gamma-distributed activity rate (sessions per active day) and a gamma-distributed
   purchase propensity, both mildly correlated with the budget; ~20% never buy. Users sign up
   before or during the period and churn with a constant hazard (less active users churn
   sooner).
2. **Catalogue**: 32 categories with very different price levels, brands with a price
   premium, items with log-normal prices around their category and brand level.
3. **Sessions** are a Poisson process over each user's active window, thinned by weekly,
   yearly and hour-of-day seasonality. Each session has a main category (richer users lean
   towards expensive categories), a few searches and a geometric number of product views;
   items are chosen among popular candidates by how well their price tier fits the user.
4. **Funnel** per viewed item: click -> add_to_cart -> (remove_from_cart) -> purchase, with
   cart and purchase probabilities rising with ``log(budget) - log(price)``; all bought lines
   of a session form one order at checkout. Some lines are refunded days later, some get a
   review whose rating and text follow item quality (refunded lines rate low).
5. **Dirty rows** (``dirty_fraction`` of the clean rows) are copies of real rows broken in
   one of several ways and placed at random positions.

The kind of shop is a preset (``GeneratorSettings.preset``): a frozen
:class:`~purchasing_power.regimes.Regime` whose parts (population, acquisition, dropout,
basket, funnel, seasonality, what the log records) the steps below take; the numbers above
are the ``default`` preset's. Presets also imitate an online supermarket, CDNOW's purchase
log, a fashion store and a four-month-old shop.

Everything is vectorised numpy driven by one ``SeedSequence``; same settings give identical
rows. Nothing runs at import time; call :func:`generate`.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from purchasing_power.regimes import (
    EVENT_TYPES,
    PRESETS,
    Acquisition,
    Basket,
    Dropout,
    Funnel,
    Preset,
    Recording,
    Regime,
    Seasonality,
)

__all__ = [
    "EVENT_TYPES",
    "PRESETS",
    "GeneratedData",
    "GeneratorSettings",
    "Preset",
    "Shift",
    "generate",
]


@dataclass(frozen=True)
class Shift:
    """A change of behaviour from ``start_date`` on, for testing the monitoring loop
    (docs/monitoring.md): what a model trained before it has not seen.

    It rewrites the simulated events and draws nothing at random, so the events before
    ``start_date`` are those of the same settings without a shift.
    """

    start_date: datetime.date
    # Every price and line total from start_date on is multiplied by this (an inflation,
    # a repricing, another currency): spend features and spend labels move, counts do not.
    price_factor: float = 1.0
    # This share of customers (spread evenly over the user ids) leave for good on
    # start_date: none of their events from then on is recorded.
    churn_share: float = 0.0


@dataclass(frozen=True)
class GeneratorSettings:
    """Knobs of the generator; the defaults give roughly 3 million events."""

    users: int = 20_000
    days: int | None = None  # None: the preset's history (365 days; cdnow 546, young 120)
    seed: int = 42
    start_date: datetime.date = datetime.date(2025, 1, 1)
    file_format: Literal["parquet", "csv"] = "parquet"
    dirty_fraction: float = 0.002  # share of extra bad raw rows injected (0 disables)
    preset: Preset = "default"  # the kind of shop, see purchasing_power.regimes.PRESETS
    shift: Shift | None = None  # a change of behaviour from a date on; None: none


@dataclass(frozen=True)
class GeneratedData:
    """Where the files went and how many rows each holds."""

    out_dir: Path
    events_path: Path
    users_path: Path
    items_path: Path
    ground_truth_path: Path
    events: int  # rows written to events, dirty rows included
    users: int
    items: int


# --------------------------------------------------------------------------------------
# Vocabulary and parameters of the generative story
# --------------------------------------------------------------------------------------

# EVENT_TYPES (regimes.py) in this order: a type's code is its index
_PAGE_VIEW, _CLICK, _SEARCH, _CART, _REMOVE, _PURCHASE, _REFUND, _REVIEW = range(8)
# Event types that the shop does not know; only ever used in dirty rows.
_UNKNOWN_EVENT_TYPES = ("wishlist_add_v2", "coupon_applied", "share_item")

# name, price level (median list price), price sigma, popularity, extra quantity (Poisson
# mean above 1 per cart line), refund rate
_CATEGORIES: tuple[tuple[str, float, float, float, float, float], ...] = (
    ("groceries", 4.5, 0.55, 10.0, 1.2, 0.01),
    ("beverages", 6.0, 0.50, 6.0, 1.5, 0.01),
    ("household", 9.0, 0.60, 6.0, 0.8, 0.02),
    ("personal_care", 12.0, 0.60, 6.0, 0.5, 0.03),
    ("baby", 18.0, 0.70, 3.0, 0.6, 0.04),
    ("pet_supplies", 16.0, 0.70, 3.5, 0.6, 0.03),
    ("health", 15.0, 0.60, 3.0, 0.4, 0.03),
    ("beauty", 24.0, 0.70, 5.0, 0.3, 0.05),
    ("stationery", 7.0, 0.60, 2.0, 0.8, 0.02),
    ("books", 16.0, 0.45, 5.0, 0.15, 0.03),
    ("music", 14.0, 0.50, 1.5, 0.10, 0.03),
    ("video_games", 45.0, 0.50, 3.0, 0.05, 0.05),
    ("toys", 24.0, 0.70, 3.5, 0.20, 0.06),
    ("fashion_women", 45.0, 0.60, 7.0, 0.20, 0.18),
    ("fashion_men", 40.0, 0.60, 5.0, 0.20, 0.16),
    ("shoes", 70.0, 0.50, 4.0, 0.02, 0.22),
    ("bags_accessories", 55.0, 0.70, 2.5, 0.05, 0.12),
    ("sports", 50.0, 0.80, 3.5, 0.15, 0.08),
    ("outdoor", 80.0, 0.80, 2.0, 0.05, 0.07),
    ("garden", 40.0, 0.80, 2.5, 0.30, 0.05),
    ("diy_tools", 60.0, 0.80, 2.5, 0.15, 0.05),
    ("home_decor", 35.0, 0.70, 3.5, 0.30, 0.08),
    ("kitchen", 30.0, 0.70, 4.0, 0.20, 0.06),
    ("furniture", 220.0, 0.70, 2.0, 0.02, 0.07),
    ("appliances", 260.0, 0.70, 1.8, 0.01, 0.06),
    ("electronics", 150.0, 0.90, 4.5, 0.05, 0.08),
    ("computers", 700.0, 0.60, 1.5, 0.01, 0.06),
    ("phones", 550.0, 0.60, 2.0, 0.01, 0.05),
    ("cameras", 600.0, 0.70, 0.8, 0.01, 0.06),
    ("jewellery", 300.0, 0.90, 1.2, 0.01, 0.09),
    ("watches", 400.0, 0.90, 1.0, 0.01, 0.07),
    ("luxury_fashion", 650.0, 0.60, 0.6, 0.01, 0.15),
)

# region: share of users, log-budget offset
_REGIONS: tuple[tuple[str, float, float], ...] = (
    ("metro", 0.24, 0.30),
    ("north", 0.18, 0.10),
    ("west", 0.20, 0.05),
    ("south", 0.20, -0.10),
    ("east", 0.13, -0.30),
    ("islands", 0.05, -0.15),
)
# age band: share of users, log-budget offset, log-activity offset, app affinity
_AGE_BANDS: tuple[tuple[str, float, float, float, float], ...] = (
    ("18-24", 0.14, -0.45, 0.25, 0.55),
    ("25-34", 0.26, -0.05, 0.15, 0.45),
    ("35-44", 0.22, 0.15, 0.00, 0.35),
    ("45-54", 0.17, 0.25, -0.05, 0.25),
    ("55-64", 0.12, 0.15, -0.15, 0.15),
    ("65+", 0.09, -0.05, -0.30, 0.08),
)
_CHANNELS = ("web", "app", "mobile_web")
_WEB, _APP, _MOBILE_WEB = range(3)
# probability that the tracker of a channel loses the session id (cookie consent etc.)
_SESSION_ID_MISSING = np.array([0.48, 0.04, 0.36])

# latent budget: log-normal monthly discretionary budget around the regime's median
_BUDGET_LOG_SIGMA = 0.70
_BUDGET_Z_SCALE = 0.73  # sd of log budget incl. region and age offsets

# session shape (the rest is the regime's Basket and Funnel)
_CANDIDATES = 3  # popular items considered per view; the best price fit is viewed
_DISCOUNT_SHARE = 0.18
_DISCOUNTS = np.array([0.10, 0.15, 0.20, 0.30])

# hour-of-day profile (UTC) of session starts
_HOUR_PROFILE = np.array(
    [
        0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.25, 0.45, 0.60, 0.70, 0.75, 0.80,
        0.85, 0.85, 0.80, 0.80, 0.85, 0.95, 1.05, 1.20, 1.30, 1.25, 0.95, 0.55,
    ]
)  # fmt: skip

_REVIEW_TEXTS: tuple[tuple[str, ...], ...] = (
    (  # 1
        "terrible, broke after a week",
        "complete waste of money",
        "does not work at all, returned it",
        "awful quality, very disappointed",
        "arrived damaged and support was useless",
        "cheap junk, avoid",
    ),
    (  # 2
        "poor quality for the price",
        "not as described, quite disappointed",
        "stopped working after a month",
        "flimsy, would not buy again",
        "meh, expected much better",
    ),
    (  # 3
        "it's okay, nothing special",
        "average, does the job",
        "decent but overpriced",
        "fine for the price, a few flaws",
        "mixed feelings, some good, some bad",
    ),
    (  # 4
        "good product, works well",
        "pretty happy with it",
        "nice quality, fast delivery",
        "solid value for money",
        "good, but the packaging could be better",
    ),
    (  # 5
        "great quality, love it",
        "excellent, exactly what I wanted",
        "perfect, would buy again",
        "amazing value, highly recommend",
        "fantastic, exceeded my expectations",
        "love it, five stars",
    ),
)

_BRAND_PREFIXES = (
    "Nor", "Vel", "Ast", "Bri", "Cal", "Dun", "Eko", "Fal", "Gri", "Hal", "Ivo", "Jun", "Kor",
    "Lum", "Mar", "Nov", "Orb", "Pax", "Qui", "Ros", "Sol", "Tor", "Ulm", "Vor", "Wil", "Xen",
    "Yar", "Zel",
)  # fmt: skip
_BRAND_SUFFIXES = (
    "a", "ex", "ico", "on", "ura", "ell", "ix", "o", "um", "ara", "en", "is", "ova", "ant",
    "ite", "ly",
)  # fmt: skip

_SECONDS_PER_DAY = 86_400
_INT_NULL = np.iinfo(np.int32).min
_TIME_NULL = np.iinfo(np.int64).min
_NEVER = np.iinfo(np.int64).max // 4  # a churn time that never comes
_DIRTY_KINDS = (
    "exact_duplicate",
    "conflicting_duplicate",
    "missing_event_id",
    "missing_user_id",
    "missing_event_time",
    "unknown_event_type",
    "negative_price_or_amount",
    "bad_quantity",
    "unparseable_event_time",  # csv only
)
_BAD_TIME_STRINGS = ("not-a-time", "2025-13-45 25:61:00", "yesterday", "NaT", "31/02/2025 10:00")


# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------


def generate(out_dir: Path, *, settings: GeneratorSettings = GeneratorSettings()) -> GeneratedData:
    """Generate users, items, events and ground truth into ``out_dir`` and return the paths."""
    _validate(settings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(settings.seed).spawn(8)]

    regime = PRESETS[settings.preset]
    days = regime.days if settings.days is None else settings.days
    world = _World(
        regime=regime,
        cal=_Calendar(settings.start_date, days, regime.seasonality),
        cat=_Cat(regime.basket),
    )
    cal, cat = world.cal, world.cat
    users = _make_users(streams[0], settings.users, cal, regime)
    items = _make_items(streams[1], settings.users, cat)
    prefs_keys = _user_category_keys(streams[2], users, cat)
    # stream 6 draws only what the default regime does not use (the BG/NBD dropout)
    events, dropout_sec = _simulate_events(streams[3], streams[6], world, users, items, prefs_keys)
    users["churn_sec"] = np.minimum(users["churn_sec"], dropout_sec)
    if settings.shift is not None:
        events = _shifted(events, users, settings.shift, settings.start_date)
    users["expected_daily_spend"] = _expected_daily_spend(
        streams[4], world, users, items, prefs_keys
    )
    n_clean = len(events["time"])
    events, bad_time_rows = _inject_dirty(
        streams[5], events, settings.dirty_fraction, csv=settings.file_format == "csv"
    )

    ext = settings.file_format
    paths = {
        "events": out_dir / f"events.{ext}",
        "users": out_dir / f"users.{ext}",
        "items": out_dir / f"items.{ext}",
        "ground_truth": out_dir / "ground_truth.parquet",
    }
    csv = ext == "csv"
    start = settings.start_date
    n_users, n_items = len(users["power"]), len(items["category"])
    event_table = _events_table(
        events, bad_time_rows, n_clean, start, n_users, n_items, cat.names, csv=csv
    )
    _write(event_table, paths["events"], csv)
    _write(_users_table(users, start, csv), paths["users"], csv)
    _write(_items_table(items, cat), paths["items"], csv)
    _write(_ground_truth_table(users, cal), paths["ground_truth"], csv=False)
    return GeneratedData(
        out_dir=out_dir,
        events_path=paths["events"],
        users_path=paths["users"],
        items_path=paths["items"],
        ground_truth_path=paths["ground_truth"],
        events=event_table.num_rows,
        users=n_users,
        items=n_items,
    )


def _validate(settings: GeneratorSettings) -> None:
    if settings.users < 1:
        raise ValueError(f"users must be >= 1, got {settings.users}")
    if settings.days is not None and settings.days < 1:
        raise ValueError(f"days must be >= 1, got {settings.days}")
    if settings.preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {settings.preset!r}")
    if settings.file_format not in ("parquet", "csv"):
        raise ValueError(f"file_format must be 'parquet' or 'csv', got {settings.file_format!r}")
    if not 0.0 <= settings.dirty_fraction < 1.0:
        raise ValueError(f"dirty_fraction must be in [0, 1), got {settings.dirty_fraction}")
    shift = settings.shift
    if shift is not None and not (shift.price_factor > 0 and 0.0 <= shift.churn_share <= 1.0):
        raise ValueError(
            f"shift needs price_factor > 0 and churn_share in [0, 1], got {shift.price_factor} "
            f"and {shift.churn_share}"
        )


def _shifted(
    events: dict[str, np.ndarray], users: dict[str, Any], shift: Shift, start_date: datetime.date
) -> dict[str, np.ndarray]:
    """``events`` as the shift changes them: prices scaled and churned users' events
    dropped from the shift's start on; a churned user's ``churn_sec`` (ground truth)
    moves to it."""
    start_sec = (shift.start_date - start_date).days * _SECONDS_PER_DAY
    after = events["time"] >= start_sec
    n_users = len(users["power"])
    # every user whose id falls on a multiple of 1 / churn_share: an even spread
    ids = np.arange(n_users)
    churned = np.floor((ids + 1) * shift.churn_share) > np.floor(ids * shift.churn_share)
    users["churn_sec"] = np.where(
        churned, np.minimum(users["churn_sec"], start_sec), users["churn_sec"]
    )
    kept = ~(after & churned[events["user"]])
    shifted = {name: values[kept] for name, values in events.items()}
    scaled = after[kept]
    for column in ("price", "amount"):
        shifted[column] = np.where(
            scaled, np.round(shifted[column] * shift.price_factor, 2), shifted[column]
        )
    return shifted


# --------------------------------------------------------------------------------------
# Calendar, catalogue, users
# --------------------------------------------------------------------------------------


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


def _make_users(
    rng: np.random.Generator, n: int, cal: _Calendar, regime: Regime
) -> dict[str, np.ndarray]:
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
    return {
        "power": power,
        "z": z,
        "activity": activity,
        "purchase_rate": purchase_rate,
        "region": region,
        "age": age,
        "signup_sec": signup_sec,
        "active_from": active_from,
        "active_to": active_to,
        "churn_sec": churn_sec,
        "channel": primary_channel,
    }


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


def _make_items(rng: np.random.Generator, n_users: int, cat: _Cat) -> dict[str, np.ndarray]:
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
    return {
        "category": item_cat,
        "brand": item_brand,
        "brand_names": np.array(brand_names, dtype=object),
        "list_price": list_price,
        "rel": rel,
        "quality": quality,
        "keys": item_cat + within,
        "cat_start": cat_start,
        "cat_end": cat_start + per_cat,
    }


def _psychological_price(p: np.ndarray) -> np.ndarray:
    """Round to shop-like prices: 3.49 (below 20), 24.99 (below 200), 349.99 (above)."""
    cheap = np.maximum(np.round(p * 10.0) / 10.0 - 0.01, 0.29)
    mid = np.round(p) - 0.01
    high = np.round(p / 10.0) * 10.0 - 0.01
    return np.round(np.where(p < 20, cheap, np.where(p < 200, mid, high)), 2)


def _user_category_keys(rng: np.random.Generator, users: dict[str, Any], cat: _Cat) -> np.ndarray:
    """Per-user category preferences as flat search keys ``user + cdf``.

    Preference = category popularity x individual gamma taste x a tilt towards expensive
    categories for users with a high budget.
    """
    n = len(users["z"])
    taste = rng.gamma(0.6, 1.0, (n, cat.n))
    pref = cat.popularity[None, :] * taste * np.exp(0.45 * users["z"][:, None] * cat.level_z)
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
    rng: np.random.Generator, items: dict[str, Any], item_cat: np.ndarray, user_z: np.ndarray
) -> np.ndarray:
    """Draw a few popular candidates in the category and view the best price-tier fit."""
    n = len(item_cat)
    cand = np.empty((n, _CANDIDATES), dtype=np.int64)
    lo = items["cat_start"][item_cat]
    hi = items["cat_end"][item_cat] - 1
    for k in range(_CANDIDATES):
        cand[:, k] = np.clip(_sample_from_keys(rng, items["keys"], item_cat), lo, hi)
    fit = -1.3 * np.abs(items["rel"][cand] - 0.6 * user_z[:, None])
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


# --------------------------------------------------------------------------------------
# Sessions and events
# --------------------------------------------------------------------------------------


def _segment_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For segments of the given lengths: owner index, position inside, segment offsets."""
    counts = counts.astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    owner = np.repeat(np.arange(len(counts)), counts)
    inside = np.arange(int(counts.sum()), dtype=np.int64) - offsets[owner]
    return owner, inside, offsets


def _session_starts(
    rng: np.random.Generator, cal: _Calendar, users: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson number of sessions per user over its active window, seasonal start times.

    Returns user, start second and whether it is the user's sign-up session, chronologically.
    """
    a = users["active_from"] / _SECONDS_PER_DAY
    b = users["active_to"] / _SECONDS_PER_DAY
    alive = b > a
    ma = cal.mass(a)
    mb = np.where(alive, cal.mass(b), ma)
    n_poisson = rng.poisson(users["activity"] * (mb - ma))
    # a user signing up during the period does so in a session at the sign-up time
    signup_session = (users["signup_sec"] >= 0) & alive
    counts = n_poisson + signup_session
    s_user, inside, _ = _segment_positions(counts)

    x = cal.inverse(ma[s_user] + rng.random(len(s_user)) * (mb - ma)[s_user])
    seasonal = np.floor(x).astype(np.int64) * _SECONDS_PER_DAY + _time_of_day(rng, len(x))
    plain = np.floor(x * _SECONDS_PER_DAY).astype(np.int64)
    lo = users["active_from"][s_user]
    hi = users["active_to"][s_user] - 1
    t = np.where((seasonal >= lo) & (seasonal <= hi), seasonal, np.clip(plain, lo, hi))
    first_is_signup = signup_session[s_user] & (inside == 0)
    t = np.where(first_is_signup, users["signup_sec"][s_user], t)
    order = np.lexsort((s_user, t))  # sessions numbered chronologically
    return s_user[order], t[order], first_is_signup[order]


def _gaps(rng: np.random.Generator, n: int, median_s: float, sigma: float) -> np.ndarray:
    g = rng.lognormal(math.log(median_s), sigma, n)
    return np.clip(np.round(g), 1, 1200).astype(np.int64)


@dataclass(frozen=True, eq=False)
class _World:
    """The fixed frame of one run: the regime, its calendar and its catalogue's categories."""

    regime: Regime
    cal: _Calendar
    cat: _Cat


@dataclass(frozen=True, eq=False)
class _Sessions:
    """One row per session, numbered chronologically."""

    user: np.ndarray
    time: np.ndarray  # start, seconds since start_date
    is_signup: np.ndarray
    channel: np.ndarray
    session_id: np.ndarray  # the logged id (-1: the tracker lost it)
    cat: np.ndarray  # main category
    n_search: np.ndarray
    n_views: np.ndarray

    def __len__(self) -> int:
        return len(self.user)


@dataclass(frozen=True, eq=False)
class _Lines:
    """One row per product viewed, grouped by session, with its funnel outcome."""

    sess: np.ndarray
    offsets: np.ndarray  # first line of each session
    user: np.ndarray
    cat: np.ndarray
    item: np.ndarray
    price: np.ndarray  # unit price shown (after any discount)
    qty: np.ndarray
    clicked: np.ndarray
    carted: np.ndarray
    removed: np.ndarray
    bought: np.ndarray

    def __len__(self) -> int:
        return len(self.sess)


@dataclass(frozen=True, eq=False)
class _Timeline:
    """Times of the browsing events (searches first, then each line's steps) and checkouts."""

    time: np.ndarray  # one per browsing event, sessions one after the other
    session_offsets: np.ndarray  # first browsing event of each session
    line_first: np.ndarray  # browsing event of each line's view
    order: np.ndarray  # order number per session (-1: nothing bought)
    checkout: np.ndarray  # per session


@dataclass(frozen=True, eq=False)
class _Purchases:
    """One row per bought line, logged at its session's checkout."""

    sess: np.ndarray
    user: np.ndarray
    time: np.ndarray
    item: np.ndarray
    cat: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    order: np.ndarray
    session_id: np.ndarray
    channel: np.ndarray

    def __len__(self) -> int:
        return len(self.sess)


def _simulate_events(
    rng: np.random.Generator,
    dropout_rng: np.random.Generator,
    world: _World,
    users: dict[str, Any],
    items: dict[str, Any],
    prefs_keys: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Sessions, their view lines and funnel, orders and after-purchase events.

    Returns the recorded events in time order and each user's dropout time (``_NEVER`` when
    the BG/NBD coin never ended the customer).
    """
    sessions = _sessions(rng, world, users, prefs_keys)
    lines = _view_lines(rng, world, sessions, users, items, prefs_keys)
    timeline = _timeline(rng, sessions, lines)
    last_session, dropout_sec = _dropout(
        dropout_rng, sessions, timeline, len(users["power"]), world.regime.dropout
    )
    purchases = _purchases(sessions, lines, timeline)
    blocks = [
        *_browsing_blocks(sessions, lines, timeline),
        _purchase_block(purchases),
        *_after_purchase_blocks(rng, world.cat, items, purchases),
    ]
    return _record(blocks, world, last_session), dropout_sec


def _sessions(
    rng: np.random.Generator, world: _World, users: dict[str, Any], prefs_keys: np.ndarray
) -> _Sessions:
    """Session starts and attributes: channel, logged id, main category, searches, views."""
    basket = world.regime.basket
    s_user, s_time, is_signup = _session_starts(rng, world.cal, users)
    n = len(s_user)
    primary = users["channel"][s_user]
    channel = np.where(rng.random(n) < 0.8, primary, rng.integers(0, 3, n))
    has_id = rng.random(n) >= _SESSION_ID_MISSING[channel]
    has_id &= world.regime.recording.session_ids
    return _Sessions(
        user=s_user,
        time=s_time,
        is_signup=is_signup,
        channel=channel,
        session_id=np.where(has_id, np.arange(n), -1),
        cat=_sample_categories(rng, prefs_keys, s_user, world.cat.n),
        n_search=rng.poisson(basket.search_mean, n),
        n_views=_views_per_session(rng, n, basket),
    )


def _views_per_session(rng: np.random.Generator, n: int, basket: Basket) -> np.ndarray:
    """Product views per session: geometric, or 1 + negative binomial (same mean) when the
    regime asks for steadier sessions; at most ``max_views``."""
    if basket.views_dispersion is None:
        views = rng.geometric(basket.view_p, n)
    else:
        k = basket.views_dispersion
        views = 1 + rng.negative_binomial(k, _nb_p(basket.view_p, k), n)
    return np.minimum(views, basket.max_views)


def _nb_p(view_p: float, k: float) -> float:
    """Success probability of the negative binomial(k) with mean ``1 / view_p - 1``."""
    return k / (k + 1.0 / view_p - 1.0)


def _mean_views_per_session(basket: Basket) -> float:
    """E[min(views, max_views)] under the distribution :func:`_views_per_session` draws."""
    k = np.arange(1, basket.max_views + 1)
    if basket.views_dispersion is None:
        pmf = basket.view_p * (1 - basket.view_p) ** (k - 1)
    else:
        r, j = basket.views_dispersion, k - 1
        p = _nb_p(basket.view_p, r)
        log_choose = np.array([math.lgamma(x + r) - math.lgamma(x + 1) - math.lgamma(r) for x in j])
        pmf = np.exp(log_choose + r * math.log(p) + j * math.log1p(-p))
    return float((k * pmf).sum() + basket.max_views * (1 - pmf.sum()))


def _view_lines(
    rng: np.random.Generator,
    world: _World,
    sessions: _Sessions,
    users: dict[str, Any],
    items: dict[str, Any],
    prefs_keys: np.ndarray,
) -> _Lines:
    """The products each session views (mostly in its main category) and the funnel."""
    regime, cat = world.regime, world.cat
    l_sess, inside, offsets = _segment_positions(sessions.n_views)
    l_user = sessions.user[l_sess]
    n_lines = len(l_sess)
    cross = rng.random(n_lines) < regime.basket.cross_category
    l_cat = sessions.cat[l_sess].copy()
    l_cat[cross] = _sample_categories(rng, prefs_keys, l_user[cross], cat.n)
    l_item = _choose_items(rng, items, l_cat, users["z"][l_user])
    discounted = rng.random(n_lines) < _DISCOUNT_SHARE
    discount = np.where(discounted, _DISCOUNTS[rng.integers(0, len(_DISCOUNTS), n_lines)], 0.0)
    l_price = np.round(items["list_price"][l_item] * (1.0 - discount), 2)
    p_click, p_cart, p_remove, p_buy = _funnel_probabilities(
        users["power"][l_user], users["purchase_rate"][l_user], l_price, regime.funnel
    )
    clicked = rng.random(n_lines) < p_click
    carted = clicked & (rng.random(n_lines) < p_cart)
    removed = carted & (rng.random(n_lines) < p_remove)
    bought = carted & ~removed & (rng.random(n_lines) < p_buy)
    # a purchase cohort: the first product of the sign-up session is bought
    forced = (inside == 0) & sessions.is_signup[l_sess] & regime.acquisition.first_session_buys
    return _Lines(
        sess=l_sess,
        offsets=offsets,
        user=l_user,
        cat=l_cat,
        item=l_item,
        price=l_price,
        qty=(1 + rng.poisson(cat.extra_qty[l_cat])).astype(np.int32),
        clicked=clicked | forced,
        carted=carted | forced,
        removed=removed & ~forced,
        bought=bought | forced,
    )


def _timeline(rng: np.random.Generator, sessions: _Sessions, lines: _Lines) -> _Timeline:
    """Browsing event times (searches, then view/click/cart/remove per line) and orders."""
    n_sessions = len(sessions)
    line_events = 1 + lines.clicked.astype(np.int64) + lines.carted + lines.removed
    excl = np.cumsum(line_events) - line_events
    line_pos = sessions.n_search[lines.sess] + excl - excl[lines.offsets[lines.sess]]
    per_session = sessions.n_search + np.bincount(
        lines.sess, weights=line_events, minlength=n_sessions
    )
    per_session = per_session.astype(np.int64)
    b_sess, b_inside, b_offsets = _segment_positions(per_session)
    gaps = _gaps(rng, len(b_sess), 25.0, 0.9)
    gaps[b_inside == 0] = 0
    cum = np.cumsum(gaps)
    b_time = sessions.time[b_sess] + cum - cum[b_offsets[b_sess]]
    last_time = b_time[b_offsets + per_session - 1]
    # orders: all bought lines of a session, at checkout
    has_order = np.bincount(lines.sess, weights=lines.bought, minlength=n_sessions) > 0
    return _Timeline(
        time=b_time,
        session_offsets=b_offsets,
        line_first=b_offsets[lines.sess] + line_pos,
        order=np.where(has_order, np.cumsum(has_order) - 1, -1),
        checkout=last_time + rng.integers(30, 400, n_sessions),
    )


def _dropout(
    rng: np.random.Generator,
    sessions: _Sessions,
    timeline: _Timeline,
    n_users: int,
    dropout: Dropout,
) -> tuple[np.ndarray, np.ndarray]:
    """BG/NBD dropout: after each repeat order a customer leaves with its own probability p.

    Returns each user's last kept session (``len(sessions)``: all kept) and the second it
    dropped out (``_NEVER``: it did not).
    """
    n_sessions = len(sessions)
    last = np.full(n_users, n_sessions, dtype=np.int64)
    dropped_at = np.full(n_users, _NEVER, dtype=np.int64)
    if dropout.after_repeat_order is None:
        return last, dropped_at
    p = rng.beta(*dropout.after_repeat_order, n_users)
    o_sess = np.flatnonzero(timeline.order >= 0)  # chronological
    o_user = sessions.user[o_sess]
    repeat = np.ones(len(o_sess), dtype=bool)
    repeat[np.unique(o_user, return_index=True)[1]] = False  # each user's first order
    drops = repeat & (rng.random(len(o_sess)) < p[o_user])
    np.minimum.at(last, o_user[drops], o_sess[drops])
    gone = last < n_sessions
    dropped_at[gone] = timeline.checkout[last[gone]] + 1
    return last, dropped_at


def _purchases(sessions: _Sessions, lines: _Lines, timeline: _Timeline) -> _Purchases:
    idx = np.flatnonzero(lines.bought)
    sess = lines.sess[idx]
    return _Purchases(
        sess=sess,
        user=lines.user[idx],
        time=timeline.checkout[sess],
        item=lines.item[idx],
        cat=lines.cat[idx],
        price=lines.price[idx],
        qty=lines.qty[idx],
        order=timeline.order[sess],
        session_id=sessions.session_id[sess],
        channel=sessions.channel[sess],
    )


def _browsing_blocks(
    sessions: _Sessions, lines: _Lines, timeline: _Timeline
) -> list[dict[str, np.ndarray]]:
    """Searches, then page_view / product_click / add_to_cart / remove_from_cart."""
    srch_sess, srch_inside, _ = _segment_positions(sessions.n_search)
    blocks = [
        _block(
            _SEARCH,
            sess=srch_sess,
            user=sessions.user[srch_sess],
            time=timeline.time[timeline.session_offsets[srch_sess] + srch_inside],
            cat=sessions.cat[srch_sess],
            session=sessions.session_id[srch_sess],
            channel=sessions.channel[srch_sess],
        )
    ]
    n_lines = len(lines)
    step = np.zeros(n_lines, dtype=np.int64)
    for etype, mask in (
        (_PAGE_VIEW, np.ones(n_lines, dtype=bool)),
        (_CLICK, lines.clicked),
        (_CART, lines.carted),
        (_REMOVE, lines.removed),
    ):
        idx = np.flatnonzero(mask)
        sess = lines.sess[idx]
        with_qty = etype in (_CART, _REMOVE)
        blocks.append(
            _block(
                etype,
                sess=sess,
                user=lines.user[idx],
                time=timeline.time[timeline.line_first[idx] + step[idx]],
                item=lines.item[idx],
                cat=lines.cat[idx],
                price=lines.price[idx],
                qty=lines.qty[idx] if with_qty else None,
                session=sessions.session_id[sess],
                channel=sessions.channel[sess],
            )
        )
        step += mask
    return blocks


def _purchase_block(purchases: _Purchases) -> dict[str, np.ndarray]:
    return _block(
        _PURCHASE,
        sess=purchases.sess,
        user=purchases.user,
        time=purchases.time,
        item=purchases.item,
        cat=purchases.cat,
        price=purchases.price,
        qty=purchases.qty,
        amount=np.round(purchases.price * purchases.qty, 2),
        order=purchases.order,
        session=purchases.session_id,
        channel=purchases.channel,
    )


def _after_purchase_blocks(
    rng: np.random.Generator, cat: _Cat, items: dict[str, Any], purchases: _Purchases
) -> list[dict[str, np.ndarray]]:
    """Refunds some days later and reviews whose rating follows item quality (no session)."""
    n_bought = len(purchases)
    quality = items["quality"][purchases.item]
    refunded = rng.random(n_bought) < cat.refund_rate[purchases.cat] * np.exp(-0.5 * quality)
    delay = (2.0 + rng.lognormal(math.log(5.0), 0.6, n_bought)) * _SECONDS_PER_DAY
    r_time = purchases.time + delay.astype(np.int64)
    qty = purchases.qty
    partial = (qty > 1) & (rng.random(n_bought) < 0.3)
    r_qty = np.where(partial, 1 + (rng.random(n_bought) * (qty - 1)).astype(np.int32), qty)
    r_qty = r_qty.astype(np.int32)
    ridx = np.flatnonzero(refunded)
    refunds = _block(
        _REFUND,
        sess=purchases.sess[ridx],
        user=purchases.user[ridx],
        time=r_time[ridx],
        item=purchases.item[ridx],
        cat=purchases.cat[ridx],
        price=purchases.price[ridx],
        qty=r_qty[ridx],
        amount=np.round(purchases.price[ridx] * r_qty[ridx], 2),
        order=purchases.order[ridx],
        channel=purchases.channel[ridx],
    )
    # reviews: rating from item quality, refunded lines rate low and review more often
    reviewed = rng.random(n_bought) < np.where(refunded, 0.22, 0.10)
    latent = 4.1 + 0.9 * quality - 2.2 * refunded + rng.normal(0.0, 0.9, n_bought)
    rating = np.clip(np.round(latent), 1, 5).astype(np.int32)
    v_delay = (3.0 + rng.lognormal(math.log(7.0), 0.7, n_bought)) * _SECONDS_PER_DAY
    v_time = np.maximum(
        purchases.time + v_delay.astype(np.int64), np.where(refunded, r_time + 3600, 0)
    )
    text_counts = np.array([len(t) for t in _REVIEW_TEXTS])
    text_offsets = np.concatenate([[0], np.cumsum(text_counts)[:-1]])
    text = text_offsets[rating - 1] + (rng.random(n_bought) * text_counts[rating - 1]).astype(int)
    vidx = np.flatnonzero(reviewed)
    reviews = _block(
        _REVIEW,
        sess=purchases.sess[vidx],
        user=purchases.user[vidx],
        time=v_time[vidx],
        item=purchases.item[vidx],
        cat=purchases.cat[vidx],
        rating=rating[vidx],
        text=text[vidx],
        channel=purchases.channel[vidx],
    )
    return [refunds, reviews]


def _record(
    blocks: list[dict[str, np.ndarray]], world: _World, last_session: np.ndarray
) -> dict[str, np.ndarray]:
    """What the shop's log keeps: its event types and time resolution, inside the period,
    nothing after a user's dropout; in time order (ties keep in-session order)."""
    rec = world.regime.recording
    events = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    sess = events.pop("sess")
    events["time"] = events["time"] // rec.time_resolution_s * rec.time_resolution_s
    recorded = np.isin(events["type"], [EVENT_TYPES.index(t) for t in rec.event_types])
    keep = (events["time"] < world.cal.end_sec) & recorded & (sess <= last_session[events["user"]])
    seq = np.arange(len(keep), dtype=np.int64)
    order = np.lexsort((seq[keep], events["time"][keep]))
    kept = np.flatnonzero(keep)[order]
    return {k: v[kept] for k, v in events.items()}


def _block(
    etype: int,
    *,
    sess: np.ndarray,
    user: np.ndarray,
    time: np.ndarray,
    cat: np.ndarray,
    channel: np.ndarray,
    item: np.ndarray | None = None,
    price: np.ndarray | None = None,
    qty: np.ndarray | None = None,
    amount: np.ndarray | None = None,
    order: np.ndarray | None = None,
    session: np.ndarray | None = None,
    rating: np.ndarray | None = None,
    text: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Columns of one event type; ``sess`` is the simulated session it stems from (internal)."""
    n = len(user)

    def filled(values: np.ndarray | None, dtype: type, null: float) -> np.ndarray:
        if values is None:
            return np.full(n, null, dtype=dtype)
        return values.astype(dtype, copy=False)

    return {
        "sess": sess.astype(np.int64, copy=False),
        "user": user.astype(np.int64, copy=False),
        "time": time.astype(np.int64, copy=False),
        "type": np.full(n, etype, dtype=np.int8),
        "item": filled(item, np.int64, -1),
        "cat": cat.astype(np.int16, copy=False),
        "price": filled(price, np.float64, np.nan),
        "qty": filled(qty, np.int32, _INT_NULL),
        "amount": filled(amount, np.float64, np.nan),
        "order": filled(order, np.int64, -1),
        "session": filled(session, np.int64, -1),
        "rating": filled(rating, np.int32, _INT_NULL),
        "text": filled(text, np.int16, -1),
        "channel": channel.astype(np.int8, copy=False),
    }


def _expected_daily_spend(
    rng: np.random.Generator,
    world: _World,
    users: dict[str, Any],
    items: dict[str, Any],
    prefs_keys: np.ndarray,
) -> np.ndarray:
    """Gross expected purchase amount per active day at average seasonality.

    Monte Carlo over 64 browsing lines per user through the same item choice and funnel
    probabilities as the simulation (sessions/day x views/session x E[value per view]).
    """
    cat, basket = world.cat, world.regime.basket
    n = len(users["z"])
    draws = 64
    user = np.repeat(np.arange(n), draws)
    cats = _sample_categories(rng, prefs_keys, user, cat.n)
    item = _choose_items(rng, items, cats, users["z"][user])
    mean_discount = _DISCOUNT_SHARE * _DISCOUNTS.mean()
    price = items["list_price"][item]
    p_click, p_cart, p_remove, p_buy = _funnel_probabilities(
        users["power"][user],
        users["purchase_rate"][user],
        price * (1.0 - mean_discount),
        world.regime.funnel,
    )
    value = p_click * p_cart * (1 - p_remove) * p_buy * price * (1 - mean_discount)
    value *= 1.0 + cat.extra_qty[cats]
    per_view = value.reshape(n, draws).mean(axis=1)
    result: np.ndarray = users["activity"] * _mean_views_per_session(basket) * per_view
    return result


# --------------------------------------------------------------------------------------
# Dirty rows
# --------------------------------------------------------------------------------------


def _inject_dirty(
    rng: np.random.Generator, events: dict[str, np.ndarray], fraction: float, *, csv: bool
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Append broken copies of real rows and shuffle them in at random positions.

    Adds the ``event_id`` column (numbers; -1 is null). Returns the events and the positions
    of rows whose ``event_time`` must be written as an unparseable string (csv only).
    """
    n = len(events["time"])
    events = dict(events)
    events["event_id"] = np.arange(n, dtype=np.int64)
    kinds = [k for k in _DIRTY_KINDS if csv or k != "unparseable_event_time"]
    if fraction <= 0 or n == 0:
        return events, np.empty(0, dtype=np.int64)
    total = math.ceil(fraction * n - 1e-9)
    per_kind = [total // len(kinds) + (i < total % len(kinds)) for i in range(len(kinds))]

    pools = {
        "conflicting_duplicate": np.flatnonzero(~np.isnan(events["amount"])),
        "negative_price_or_amount": np.flatnonzero(~np.isnan(events["price"])),
        "bad_quantity": np.flatnonzero(events["qty"] != _INT_NULL),
    }
    has_amount = len(pools["conflicting_duplicate"]) > 0

    next_id = n
    parts: list[dict[str, np.ndarray]] = []
    bad_time_part = -1
    for kind, k in zip(kinds, per_kind, strict=True):
        pool = pools.get(kind, np.arange(n))
        pool = pool if len(pool) else np.arange(n)
        src = np.sort(rng.choice(pool, k, replace=k > len(pool)))  # distinct source rows
        part = {c: v[src].copy() for c, v in events.items()}
        if kind not in ("exact_duplicate", "conflicting_duplicate"):
            part["event_id"] = np.arange(next_id, next_id + k, dtype=np.int64)
            next_id += k
        if kind == "conflicting_duplicate":
            if has_amount:
                factor = rng.uniform(1.1, 2.5, k)
                part["amount"] = np.round(part["amount"] * factor, 2)
            else:
                part["channel"] = (part["channel"] + 1) % len(_CHANNELS)
        elif kind == "missing_event_id":
            part["event_id"][:] = -1
        elif kind == "missing_user_id":
            part["user"][:] = -1
        elif kind == "missing_event_time":
            part["time"][:] = _TIME_NULL
        elif kind == "unknown_event_type":
            part["type"] = (
                len(EVENT_TYPES) + rng.integers(0, len(_UNKNOWN_EVENT_TYPES), k)
            ).astype(np.int8)
        elif kind == "negative_price_or_amount":
            part["price"] = -np.abs(part["price"])
            part["amount"] = -np.abs(part["amount"])
        elif kind == "bad_quantity":
            part["qty"] = -rng.integers(0, 4, k).astype(np.int32)
        elif kind == "unparseable_event_time":
            bad_time_part = len(parts)
        parts.append(part)

    n_dirty = sum(per_kind)
    dirty = {c: np.concatenate([p[c] for p in parts]) for c in events}
    is_bad_time = np.zeros(n_dirty, dtype=bool)
    if bad_time_part >= 0:
        start = sum(per_kind[:bad_time_part])
        is_bad_time[start : start + per_kind[bad_time_part]] = True
    # dirty row j goes before clean row pos[j]: keys 2*i+1 for clean rows, 2*pos for dirty
    pos = rng.integers(0, n + 1, n_dirty)
    key = np.concatenate([2 * np.arange(n, dtype=np.int64) + 1, 2 * pos])
    order = np.argsort(key, kind="stable")
    merged = {c: np.concatenate([events[c], dirty[c]])[order] for c in events}
    flag = np.concatenate([np.zeros(n, dtype=bool), is_bad_time])[order]
    return merged, np.flatnonzero(flag)


# --------------------------------------------------------------------------------------
# Arrow tables and writing
# --------------------------------------------------------------------------------------


def _epoch_seconds(start_date: datetime.date) -> int:
    return int((start_date - datetime.date(1970, 1, 1)).days) * _SECONDS_PER_DAY


def _id_strings(prefix: str, numbers: np.ndarray, min_width: int, max_value: int) -> pa.Array:
    """Fixed-width ids like ``u000123`` built as raw Arrow buffers; negative numbers -> null."""
    width = max(min_width, len(str(max(int(max_value), 0))))
    head = prefix.encode("ascii")
    row = len(head) + width
    chunks = []
    step = max(1, (2**31 - 1) // row)
    for lo in range(0, max(len(numbers), 1), step):
        nums = numbers[lo : lo + step]
        n = len(nums)
        buf = np.empty((n, row), dtype=np.uint8)
        buf[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
        valid = nums >= 0
        v = np.where(valid, nums, 0).astype(np.int64)
        for j in range(row - 1, len(head) - 1, -1):
            buf[:, j] = v % 10 + 48
            v //= 10
        offsets = np.arange(0, (n + 1) * row, row, dtype=np.int32)
        validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
        chunks.append(
            pa.Array.from_buffers(
                pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(buf)]
            )
        )
    return chunks[0] if len(chunks) == 1 else pa.chunked_array(chunks)


def _time_strings(sec: np.ndarray, start_date: datetime.date) -> pa.Array:
    """``YYYY-MM-DD HH:MM:SS`` strings from seconds since start_date; _TIME_NULL -> null."""
    valid = sec != _TIME_NULL
    s = np.where(valid, sec, 0)
    day = np.floor_divide(s, _SECONDS_PER_DAY)
    tod = s - day * _SECONDS_PER_DAY
    d0 = int(day.min()) if len(day) else 0
    d1 = int(day.max()) if len(day) else 0
    dates = (np.datetime64(start_date, "D") + np.arange(d0, d1 + 1)).astype("S10")
    date_tab = np.frombuffer(dates.tobytes(), dtype=np.uint8).reshape(-1, 10)
    secs = np.arange(_SECONDS_PER_DAY)
    tod_tab = np.full((_SECONDS_PER_DAY, 9), ord(":"), dtype=np.uint8)
    tod_tab[:, 0] = ord(" ")
    for col, value in ((1, secs // 3600), (4, secs // 60 % 60), (7, secs % 60)):
        tod_tab[:, col] = value // 10 + 48
        tod_tab[:, col + 1] = value % 10 + 48
    n = len(sec)
    buf = np.empty((n, 19), dtype=np.uint8)
    buf[:, :10] = date_tab[day - d0]
    buf[:, 10:] = tod_tab[tod]
    offsets = np.arange(0, (n + 1) * 19, 19, dtype=np.int32)
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(buf)]
    )


def _timestamps(sec: np.ndarray, start_date: datetime.date) -> pa.Array:
    valid = sec != _TIME_NULL
    us = (np.where(valid, sec, 0) + _epoch_seconds(start_date)) * 1_000_000
    return pa.array(us, type=pa.timestamp("us"), mask=~valid)


def _dictionary(codes: np.ndarray, names: list[str] | tuple[str, ...]) -> pa.Array:
    idx = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(names), pa.string())).cast(pa.string())


def _events_table(
    ev: dict[str, np.ndarray],
    bad_time_rows: np.ndarray,
    n_clean: int,
    start_date: datetime.date,
    n_users: int,
    n_items: int,
    category_names: list[str],
    *,
    csv: bool,
) -> pa.Table:
    n = len(ev["time"])
    if csv:
        event_time = _time_strings(ev["time"], start_date)
        if len(bad_time_rows):
            mask = np.zeros(n, dtype=bool)
            mask[bad_time_rows] = True
            bad = [_BAD_TIME_STRINGS[i % len(_BAD_TIME_STRINGS)] for i in range(len(bad_time_rows))]
            event_time = pc.replace_with_mask(event_time, pa.array(mask), pa.array(bad))
    else:
        event_time = _timestamps(ev["time"], start_date)
    texts = [t for group in _REVIEW_TEXTS for t in group]
    n_orders = int(ev["order"].max()) + 1 if n else 0
    n_sessions = int(ev["session"].max()) + 1 if n else 0
    return pa.table(
        {
            "event_id": _id_strings("e", ev["event_id"], 9, max(n, n_clean) - 1),
            "user_id": _id_strings("u", ev["user"], 6, n_users - 1),
            "event_time": event_time,
            "event_type": _dictionary(ev["type"], EVENT_TYPES + _UNKNOWN_EVENT_TYPES),
            "item_id": _id_strings("i", ev["item"], 5, n_items - 1),
            "category": _dictionary(ev["cat"], category_names),
            "price": pa.array(ev["price"], pa.float64(), mask=np.isnan(ev["price"])),
            "quantity": pa.array(ev["qty"], pa.int32(), mask=ev["qty"] == _INT_NULL),
            "amount": pa.array(ev["amount"], pa.float64(), mask=np.isnan(ev["amount"])),
            "order_id": _id_strings("o", ev["order"], 7, n_orders - 1),
            "session_id": _id_strings("s", ev["session"], 8, n_sessions - 1),
            "rating": pa.array(ev["rating"], pa.int32(), mask=ev["rating"] == _INT_NULL),
            "review_text": _dictionary(ev["text"], texts),
            "channel": _dictionary(ev["channel"], _CHANNELS),
        }
    )


def _users_table(users: dict[str, Any], start_date: datetime.date, csv: bool) -> pa.Table:
    n = len(users["power"])
    signed = users["signup_sec"]
    return pa.table(
        {
            "user_id": _id_strings("u", np.arange(n), 6, n - 1),
            "signed_up_at": _time_strings(signed, start_date)
            if csv
            else _timestamps(signed, start_date),
            "region": _dictionary(users["region"], [r[0] for r in _REGIONS]),
            "age_band": _dictionary(users["age"], [a[0] for a in _AGE_BANDS]),
        }
    )


def _items_table(items: dict[str, Any], cat: _Cat) -> pa.Table:
    n = len(items["category"])
    return pa.table(
        {
            "item_id": _id_strings("i", np.arange(n), 5, n - 1),
            "category": _dictionary(items["category"], cat.names),
            "list_price": pa.array(items["list_price"], pa.float64()),
            "brand": _dictionary(items["brand"], list(items["brand_names"])),
        }
    )


def _ground_truth_table(users: dict[str, Any], cal: _Calendar) -> pa.Table:
    n = len(users["power"])
    churn = np.where(users["churn_sec"] < cal.end_sec, users["churn_sec"], _TIME_NULL)
    return pa.table(
        {
            "user_id": _id_strings("u", np.arange(n), 6, n - 1),
            "latent_power": pa.array(users["power"], pa.float64()),
            "activity_rate": pa.array(users["activity"], pa.float64()),
            "purchase_rate": pa.array(users["purchase_rate"], pa.float64()),
            "churned_at": _timestamps(churn, cal.start_date),
            "expected_daily_spend": pa.array(users["expected_daily_spend"], pa.float64()),
        }
    )


def _write(table: pa.Table, path: Path, csv: bool) -> None:
    if csv:
        options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
        pacsv.write_csv(table, path, write_options=options)
    else:
        pq.write_table(table, path, compression="zstd")
