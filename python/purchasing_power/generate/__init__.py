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

The steps are modules, in the order :func:`generate` runs them: ``population``
(calendar, catalogue, users), ``events`` (sessions, funnel, purchases, a shift),
``dirty`` and ``tables`` (the input contract's files); ``vocabulary`` holds the story's
parameters and ``settings`` what a caller passes and gets back.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from purchasing_power.generate.dirty import _inject_dirty
from purchasing_power.generate.events import (
    _expected_daily_spend,
    _shifted,
    _simulate_events,
    _World,
)
from purchasing_power.generate.population import (
    _Calendar,
    _Cat,
    _make_items,
    _make_users,
    _user_category_keys,
)
from purchasing_power.generate.settings import GeneratedData, GeneratorSettings, Shift, _validate
from purchasing_power.generate.tables import (
    _events_table,
    _ground_truth_table,
    _items_table,
    _users_table,
    _write,
)
from purchasing_power.regimes import EVENT_TYPES, PRESETS, Preset

__all__ = [
    "EVENT_TYPES",
    "PRESETS",
    "GeneratedData",
    "GeneratorSettings",
    "Preset",
    "Shift",
    "generate",
]


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
    users = replace(users, churn_sec=np.minimum(users.churn_sec, dropout_sec))
    if settings.shift is not None:
        events, users = _shifted(events, users, settings.shift, settings.start_date)
    expected_daily_spend = _expected_daily_spend(streams[4], world, users, items, prefs_keys)
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
    n_users, n_items = len(users.power), len(items.category)
    event_table = _events_table(
        events, bad_time_rows, n_clean, start, n_users, n_items, cat.names, csv=csv
    )
    _write(event_table, paths["events"], csv)
    _write(_users_table(users, start, csv), paths["users"], csv)
    _write(_items_table(items, cat), paths["items"], csv)
    _write(_ground_truth_table(users, expected_daily_spend, cal), paths["ground_truth"], csv=False)
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
