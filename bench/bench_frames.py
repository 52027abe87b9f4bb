"""Where Python shapes frames, polars against what it replaced or would replace (issue 36).

A plain script (not a test). Each pair runs interleaved in this one process (old, new,
old, new, ...) after one warm-up each, and reports the best of ``--repeat``; the outputs
of the pair are checked equal before anything is timed.

* CDNOW (``bench/cdnow/data.py``), on the real CDNOW_master.txt (69,659 lines): parsing
  the file, the conversion to the input contract and the per-customer summaries, as
  polars expressions (now) against the Python loops they replaced (kept below as
  ``loop_*``, verbatim).
* The holdout's per-user figures (``bench/holdout.py``): DuckDB's rows put in the order
  of the scored users (a third of them bought) by a polars left join (now) against the
  dict loop over fetched rows it replaced (the fetch, ``.rows()``, counted with the loop).
* The generator's columns (``purchasing_power.generate``): fixed-width ids and
  ``YYYY-MM-DD HH:MM:SS`` strings written as raw Arrow buffers from numpy (what it does)
  against the shortest polars expressions that give the same strings.

    python bench/bench_frames.py                 # CDNOW from data/cdnow, 2,000,000 ids
    python bench/bench_frames.py --rows 500000 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import holdout
from cdnow import data
from cdnow.data import Customers, Purchases, epoch_day
from measure import REPO
from purchasing_power import generate

# --------------------------------------------------------------------------------------
# What bench/cdnow/data.py did before polars (verbatim but for the names)
# --------------------------------------------------------------------------------------


def loop_read_master(path: Path) -> Purchases:
    ids, days, quantities, amounts = [], [], [], []
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) != 4 or not fields[1].isdigit():
            continue
        customer, date, quantity, amount = fields
        ids.append(customer.lstrip("0") or "0")
        days.append(epoch_day(dt.datetime.strptime(date, "%Y%m%d").date()))
        quantities.append(int(quantity))
        amounts.append(float(amount))
    return Purchases(
        np.array(ids, dtype=object),
        np.array(days, dtype=np.int64),
        np.array(quantities, dtype=np.int64),
        np.array(amounts, dtype=np.float64),
    )


def loop_to_events(purchases: Purchases) -> pa.Table:
    seen: dict[tuple[str, int], int] = {}
    event_ids = []
    for customer, day in zip(purchases.customer_id, purchases.day, strict=True):
        rank = seen.get((customer, int(day)), 0)
        seen[(customer, int(day))] = rank + 1
        date = dt.date(1970, 1, 1) + dt.timedelta(days=int(day))
        event_ids.append(f"{customer}-{date:%Y%m%d}-{rank}")
    micros = purchases.day.astype(np.int64) * 86_400_000_000
    return pa.table(
        {
            "event_id": pa.array(event_ids, pa.string()),
            "user_id": pa.array(purchases.customer_id.tolist(), pa.string()),
            "event_time": pa.array(micros, pa.timestamp("us")),
            "event_type": pa.array(["purchase"] * len(purchases), pa.string()),
            "quantity": pa.array(purchases.quantity, pa.int64()),
            "amount": pa.array(purchases.amount, pa.float64()),
            "order_id": pa.array(event_ids, pa.string()),
        }
    )


def loop_summarize(purchases: Purchases, *, as_of: dt.date, holdout_days: int) -> Customers:
    start, end = epoch_day(as_of), epoch_day(as_of) + holdout_days
    ids = np.unique(purchases.customer_id[purchases.day < start])
    index = {customer: i for i, customer in enumerate(ids)}
    n = len(ids)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    spend = np.zeros(n)
    holdout = np.zeros(n)
    purchased = np.zeros(n, dtype=bool)
    by_day: dict[tuple[int, int], float] = {}
    for customer, day, amount in zip(
        purchases.customer_id, purchases.day, purchases.amount, strict=True
    ):
        i = index.get(customer)
        if i is None:
            continue
        if day < start:
            first[i] = min(first[i], day)
            last[i] = max(last[i], day)
            spend[i] += amount
            by_day[(i, int(day))] = by_day.get((i, int(day)), 0.0) + amount
        elif day < end:
            holdout[i] += amount
            purchased[i] = True
    days = np.zeros(n, dtype=np.int64)
    repeat_total = np.zeros(n)
    for (i, day), amount in by_day.items():
        days[i] += 1
        if day != first[i]:
            repeat_total[i] += amount
    with np.errstate(invalid="ignore", divide="ignore"):
        repeat_mean = np.where(days > 1, repeat_total / np.maximum(days - 1, 1), np.nan)
    return Customers(ids, first, last, days, spend, repeat_mean, holdout, purchased)


# --------------------------------------------------------------------------------------
# The generator's string columns as polars would write them
# --------------------------------------------------------------------------------------


def polars_id_strings(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pl.Series(numbers).cast(pl.String).str.zfill(width)
    return (prefix + digits).to_arrow().cast(pa.string())


def polars_time_strings(sec: np.ndarray, start: dt.date) -> pa.Array:
    origin = (start - dt.date(1970, 1, 1)).days * 86_400
    times = pl.Series((sec + origin) * 1_000_000).cast(pl.Datetime("us"))
    return times.dt.strftime("%Y-%m-%d %H:%M:%S").to_arrow().cast(pa.string())


def loop_aligned(rows: list[tuple], user_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """What bench/holdout.py's truth() and model_scores() did with their fetched rows."""
    index = {user: i for i, user in enumerate(user_ids)}
    spend = np.zeros(len(index))
    purchased = np.zeros(len(index), dtype=bool)
    for user_id, amount, bought in rows:
        i = index.get(user_id)
        if i is not None:
            spend[i], purchased[i] = amount, bought
    return spend, purchased


# --------------------------------------------------------------------------------------
# Timing and checking
# --------------------------------------------------------------------------------------


def interleaved(old: Callable[[], object], new: Callable[[], object], repeat: int):
    """Best seconds of ``old`` and of ``new``, run alternately after one warm-up each."""
    old(), new()
    best_old = best_new = float("inf")
    for _ in range(repeat):
        for fn, which in ((old, "old"), (new, "new")):
            start = time.perf_counter()
            fn()
            took = time.perf_counter() - start
            if which == "old":
                best_old = min(best_old, took)
            else:
                best_new = min(best_new, took)
    return best_old, best_new


def same_customers(a: Customers, b: Customers) -> float:
    """The largest relative difference of the float columns; the others must be equal."""
    worst = 0.0
    for name, left in vars(a).items():
        right = getattr(b, name)
        assert left.dtype == right.dtype or name == "customer_id", (name, left.dtype, right.dtype)
        if left.dtype.kind == "f":
            assert np.array_equal(np.isnan(left), np.isnan(right)), name
            both = ~np.isnan(left)
            scale = np.maximum(np.abs(left[both]), 1e-300)
            worst = max(worst, float(np.max(np.abs(left[both] - right[both]) / scale, initial=0)))
        else:
            assert np.array_equal(left, right), name
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=REPO / "data" / "cdnow")
    parser.add_argument("--rows", type=int, default=2_000_000, help="generator column rows")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    rows: list[tuple[str, float, float, str]] = []

    master, _ = data.fetch(args.cache)
    old_p, new_p = loop_read_master(master), data.read_master(master)
    for name in ("customer_id", "day", "quantity", "amount"):
        assert np.array_equal(getattr(old_p, name), getattr(new_p, name)), name
    old_s, new_s = interleaved(
        lambda: loop_read_master(master), lambda: data.read_master(master), args.repeat
    )
    rows.append(("CDNOW read_master", old_s, new_s, f"{len(new_p):,} lines, equal"))

    assert loop_to_events(old_p).equals(data.to_events(new_p))
    old_s, new_s = interleaved(
        lambda: loop_to_events(new_p), lambda: data.to_events(new_p), args.repeat
    )
    rows.append(("CDNOW to_events", old_s, new_s, "tables equal"))

    def summaries(fn):
        return lambda: fn(new_p, as_of=data.AS_OF, holdout_days=data.HOLDOUT_DAYS)

    worst = same_customers(summaries(loop_summarize)(), summaries(data.summarize)())
    old_s, new_s = interleaved(summaries(loop_summarize), summaries(data.summarize), args.repeat)
    rows.append(("CDNOW summarize", old_s, new_s, f"equal, floats within {worst:.1e}"))

    rng = np.random.default_rng(36)
    users = [f"u{i:07d}" for i in range(args.rows)]
    bought = pl.DataFrame(
        {"user_id": users[::3], "spend": rng.random(len(users[::3])), "purchased": True}
    )
    rows_ = bought.rows()
    old_a, new_a = (
        loop_aligned(rows_, users),
        holdout.aligned(bought, users, ["spend", "purchased"]),
    )
    assert all(np.array_equal(o, n) for o, n in zip(old_a, new_a, strict=True))
    old_s, new_s = interleaved(
        lambda: loop_aligned(bought.rows(), users),
        lambda: holdout.aligned(bought, users, ["spend", "purchased"]),
        args.repeat,
    )
    rows.append(("holdout per-user figures", old_s, new_s, f"{args.rows:,} users, equal"))

    numbers = rng.integers(0, 999_999, args.rows)
    old_a = generate.tables._id_strings("u", numbers, 6, 999_999)
    assert old_a.equals(polars_id_strings("u", numbers, 6))
    old_s, new_s = interleaved(
        lambda: generate.tables._id_strings("u", numbers, 6, 999_999),
        lambda: polars_id_strings("u", numbers, 6),
        args.repeat,
    )
    rows.append(("generator ids", old_s, new_s, f"{args.rows:,} ids, equal"))

    start = dt.date(2026, 1, 1)
    seconds = rng.integers(0, 365 * 86_400, args.rows)
    old_a = generate.tables._time_strings(seconds, start)
    assert old_a.equals(polars_time_strings(seconds, start))
    old_s, new_s = interleaved(
        lambda: generate.tables._time_strings(seconds, start),
        lambda: polars_time_strings(seconds, start),
        args.repeat,
    )
    rows.append(("generator times", old_s, new_s, f"{args.rows:,} strings, equal"))

    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cpus, best of {args.repeat}")
    print("| step | before (s) | polars (s) | before / polars | outputs |")
    print("|---|---:|---:|---:|---|")
    for name, old_s, new_s, note in rows:
        print(f"| {name} | {old_s:.4f} | {new_s:.4f} | {old_s / new_s:.1f}x | {note} |")


if __name__ == "__main__":
    main()
