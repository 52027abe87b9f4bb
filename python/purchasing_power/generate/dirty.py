"""Dirty rows: copies of real rows broken in one of several ways (``dirty_fraction`` of
the clean rows), placed at random positions."""

from __future__ import annotations

import math

import numpy as np

from purchasing_power.generate.vocabulary import (
    _CHANNELS,
    _DIRTY_KINDS,
    _INT_NULL,
    _TIME_NULL,
    _UNKNOWN_EVENT_TYPES,
)
from purchasing_power.regimes import EVENT_TYPES


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
