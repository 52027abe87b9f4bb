"""Shop regimes the synthetic generator can imitate: one frozen :class:`Regime` per preset.

A regime holds every parameter that differs between kinds of shop (who the customers are,
when they arrive and leave, what a basket looks like, how the year and the week move, the
funnel, and what the shop's log records); the generator's steps each take the part they need.
``default`` is the shop the model was developed against; the page is ``docs/generator.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "PRESETS",
    "Acquisition",
    "Basket",
    "Dropout",
    "Funnel",
    "Population",
    "Preset",
    "Recording",
    "Regime",
    "Seasonality",
]

Preset = Literal["default", "grocery", "cdnow", "fashion", "young"]

# The raw event types a shop may send (generate.py codes each by its index here).
EVENT_TYPES: tuple[str, ...] = (
    "page_view",
    "product_click",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "refund",
    "review",
)


@dataclass(frozen=True)
class Population:
    """Who the customers are: budget, visit rate and purchase propensity."""

    budget_median: float = 110.0  # median latent_power (log-normal monthly budget)
    activity_mean: float = 0.10  # sessions per active day, gamma mean
    activity_shape: float = 0.9  # gamma shape of the visit rate (lower: more heterogeneous)
    purchase_shape: float = 2.0  # gamma shape of the purchase propensity (mean 1)
    never_buyer_share: float = 0.20  # before the budget tilt (low budgets never buy more often)


@dataclass(frozen=True)
class Acquisition:
    """When customers arrive."""

    pre_period_share: float = 0.45  # signed up before start_date, uniformly in pre_period_days
    pre_period_days: float = 730.0
    window_days: int | None = None  # in-period sign-ups only in the first window_days
    growth: float = 0.0  # sign-up rate grows linearly to (1 + growth) x by the period end
    first_session_buys: bool = False  # the sign-up session ends in an order (a purchase cohort)


@dataclass(frozen=True)
class Dropout:
    """How customers leave: a constant hazard in time and/or a BG/NBD coin after purchases."""

    mean_lifetime_days: float | None = 600.0  # at average activity; None: no time hazard
    # Beta(a, b) of a customer's p: after each repeat order it drops out with probability p
    after_repeat_order: tuple[float, float] | None = None


@dataclass(frozen=True)
class Basket:
    """What a session looks at and what an order holds."""

    categories: tuple[str, ...] | None = None  # the catalogue's categories; None: all 32
    view_p: float = 0.26  # geometric number of product views per session (mean 1 / view_p)
    views_dispersion: float | None = None  # None: geometric; k: 1 + negative binomial(k)
    max_views: int = 60
    search_mean: float = 0.7  # Poisson searches per session
    cross_category: float = 0.15  # share of views outside the session's main category
    price_spread: float = 1.0  # x the category's spread of item prices (sd of log price)
    quantity_scale: float = 1.0  # x the category's typical extra units per line
    refund_scale: float = 1.0  # x the category's refund rate


@dataclass(frozen=True)
class Funnel:
    """Per viewed item: click, cart (given click), remove (given cart), buy (given kept)."""

    click: float = 0.42
    cart: float = 0.34  # x (0.35 + 0.65 afford)
    remove: float = 0.12  # + remove_unaffordable x (1 - afford)
    remove_unaffordable: float = 0.25
    buy: float = 0.62  # x purchase_rate x afford, capped at buy_cap
    buy_cap: float = 0.92


@dataclass(frozen=True)
class Seasonality:
    """Day weights: weekday x yearly wave x holiday peak x trend (normalised to mean 1)."""

    yearly_amplitude: float = 0.12  # cosine wave peaking on yearly_peak_day (day of year)
    yearly_peak_day: float = 350.0
    holiday_peak: float = 0.0  # extra weight at holiday_day (von Mises bump; 0: none)
    holiday_day: float = 335.0
    holiday_concentration: float = 12.0  # higher: a narrower peak (12: sd ~17 days)
    trend_per_year: float = 0.10
    weekday: tuple[float, ...] = (0.92, 0.90, 0.93, 0.97, 1.02, 1.15, 1.13)  # Monday .. Sunday


@dataclass(frozen=True)
class Recording:
    """What the shop's event log records."""

    event_types: tuple[str, ...] = EVENT_TYPES
    time_resolution_s: int = 1  # 86_400: date-only timestamps (midnight UTC)
    session_ids: bool = True  # False: no session_id anywhere (a transaction log)


@dataclass(frozen=True)
class Regime:
    """One kind of shop: the generator's parameters that are not sizes or seeds."""

    name: Preset
    imitates: str
    days: int  # history length when GeneratorSettings.days is not given
    population: Population = field(default_factory=Population)
    acquisition: Acquisition = field(default_factory=Acquisition)
    dropout: Dropout = field(default_factory=Dropout)
    basket: Basket = field(default_factory=Basket)
    funnel: Funnel = field(default_factory=Funnel)
    seasonality: Seasonality = field(default_factory=Seasonality)
    recording: Recording = field(default_factory=Recording)


_GROCERY_CATEGORIES = (
    "groceries",
    "beverages",
    "household",
    "personal_care",
    "baby",
    "pet_supplies",
    "health",
)
_FASHION_CATEGORIES = (
    "fashion_women",
    "fashion_men",
    "shoes",
    "bags_accessories",
    "sports",
    "jewellery",
    "watches",
    "luxury_fashion",
)

PRESETS: dict[Preset, Regime] = {
    "default": Regime(
        name="default",
        imitates="a general online department store (the regime the model was developed on)",
        days=365,
    ),
    "grocery": Regime(
        name="grocery",
        imitates="an online supermarket: weekly baskets of many cheap lines across aisles",
        days=365,
        population=Population(
            activity_mean=0.15, activity_shape=4.0, purchase_shape=6.0, never_buyer_share=0.03
        ),
        acquisition=Acquisition(pre_period_share=0.75),
        dropout=Dropout(mean_lifetime_days=2_000.0),
        basket=Basket(
            categories=_GROCERY_CATEGORIES,
            view_p=0.15,
            views_dispersion=4.0,
            search_mean=0.3,
            cross_category=0.75,
            price_spread=0.5,
            quantity_scale=0.6,
            refund_scale=0.5,
        ),
        funnel=Funnel(
            click=0.9, cart=0.8, remove=0.04, remove_unaffordable=0.10, buy=0.95, buy_cap=0.98
        ),
        seasonality=Seasonality(
            yearly_amplitude=0.03,
            holiday_peak=0.08,
            holiday_day=356.0,
            holiday_concentration=40.0,
            trend_per_year=0.03,
            weekday=(0.95, 0.88, 0.90, 0.95, 1.10, 1.25, 0.97),
        ),
    ),
    "cdnow": Regime(
        name="cdnow",
        imitates="CDNOW's 1997 cohort: a purchase log, one 12-week cohort, sparse repeat buying",
        days=546,  # 78 weeks, as in the CDNOW sample
        population=Population(
            activity_mean=0.012, activity_shape=0.25, purchase_shape=3.0, never_buyer_share=0.0
        ),
        acquisition=Acquisition(pre_period_share=0.0, window_days=84, first_session_buys=True),
        dropout=Dropout(mean_lifetime_days=None, after_repeat_order=(0.79, 2.43)),
        basket=Basket(
            categories=("music",),
            view_p=0.7,
            search_mean=0.2,
            cross_category=0.0,
            quantity_scale=14.0,  # ~2.4 CDs a line, as in CDNOW (0.1 extra x 14)
            refund_scale=0.0,
        ),
        funnel=Funnel(click=0.95, cart=0.9, remove=0.02, remove_unaffordable=0.0, buy=0.9),
        seasonality=Seasonality(yearly_amplitude=0.05, trend_per_year=0.0),
        recording=Recording(event_types=("purchase",), time_resolution_s=86_400, session_ids=False),
    ),
    "fashion": Regime(
        name="fashion",
        imitates="an online fashion store: browse a lot, buy rarely and dear, return often",
        days=365,
        population=Population(
            budget_median=140.0, activity_mean=0.08, activity_shape=0.7, never_buyer_share=0.25
        ),
        dropout=Dropout(mean_lifetime_days=450.0),
        basket=Basket(
            categories=_FASHION_CATEGORIES,
            view_p=0.07,
            max_views=120,
            search_mean=1.5,
            cross_category=0.25,
            refund_scale=1.8,
        ),
        funnel=Funnel(
            click=0.45, cart=0.10, remove=0.25, remove_unaffordable=0.30, buy=0.45, buy_cap=0.85
        ),
        seasonality=Seasonality(
            yearly_amplitude=0.10,
            holiday_peak=1.6,
            holiday_day=338.0,  # early December, Black Friday to Christmas
            holiday_concentration=10.0,
        ),
    ),
    "young": Regime(
        name="young",
        imitates="a shop opened four months ago, still acquiring customers",
        days=120,
        acquisition=Acquisition(pre_period_share=0.0, growth=2.0),
    ),
}
