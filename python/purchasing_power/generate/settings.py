"""The generator's settings (``GeneratorSettings``, ``Shift``) and what it
returns (``GeneratedData``)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from purchasing_power.regimes import PRESETS, Preset


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
