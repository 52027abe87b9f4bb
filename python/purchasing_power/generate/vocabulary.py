"""The vocabulary and parameters of the generative story: event type codes, categories,
regions, age bands, channels, review texts, brand names and what dirty rows look like."""

from __future__ import annotations

import numpy as np

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
