"""CDNOW: fetch the wheel that ships it, check it, convert it to the input contract, and
compute what the evaluation needs (calibration summaries, holdout spend).

CDNOW_master.txt has one line per purchase: customer id, date (YYYYMMDD), number of CDs,
dollar value (Fader, Hardie & Lee 2005). It ships inside the ``lifetimes==0.11.3`` wheel
on PyPI; nothing here is committed, the data lands in a git-ignored cache folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

WHEEL = "lifetimes==0.11.3"
MASTER = "lifetimes/datasets/CDNOW_master.txt"
SAMPLE = "lifetimes/datasets/CDNOW_sample.txt"
MASTER_SHA256 = "eff6889ed364c5199d6eacbbeb7a6d559971df4406ac876f322c373f00a072ef"

# The standard split: calibration 1997-01-01 .. 1997-09-30, scores at 1997-10-01, holdout
# the next 39 weeks (273 days, to 1998-06-30, the last day of the data).
AS_OF = dt.date(1997, 10, 1)
HOLDOUT_DAYS = 273


@dataclass(frozen=True)
class Purchases:
    """One row per purchase line, as arrays (dates as days since 1970-01-01)."""

    customer_id: np.ndarray  # str
    day: np.ndarray  # int64
    quantity: np.ndarray  # int64
    amount: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.customer_id)

    def select(self, mask: np.ndarray) -> Purchases:
        return Purchases(
            self.customer_id[mask], self.day[mask], self.quantity[mask], self.amount[mask]
        )


def epoch_day(date: dt.date) -> int:
    return (date - dt.date(1970, 1, 1)).days


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(cache: Path) -> tuple[Path, Path]:
    """CDNOW_master.txt and CDNOW_sample.txt in ``cache``, downloading the wheel with pip
    once (``pip download --no-deps``) and checking the master file's sha256."""
    cache.mkdir(parents=True, exist_ok=True)
    master, sample = cache / "CDNOW_master.txt", cache / "CDNOW_sample.txt"
    if not master.exists() or not sample.exists():
        wheels = sorted(cache.glob("[Ll]ifetimes-0.11.3-*.whl"))
        if not wheels:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--quiet",
                    WHEEL,
                    "-d",
                    str(cache),
                ],
                check=True,
            )
            wheels = sorted(cache.glob("[Ll]ifetimes-0.11.3-*.whl"))
        with zipfile.ZipFile(wheels[0]) as wheel:
            master.write_bytes(wheel.read(MASTER))
            sample.write_bytes(wheel.read(SAMPLE))
    digest = sha256(master)
    if digest != MASTER_SHA256:
        raise ValueError(f"{master}: sha256 {digest}, expected {MASTER_SHA256}")
    return master, sample


def read_master(path: Path) -> Purchases:
    """The purchase lines of a CDNOW_master-format file (whitespace separated; a header
    line, if any, is skipped)."""
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


def read_sample_ids(path: Path) -> set[str]:
    """The master ids of the 1/10 sample (CDNOW_sample.txt: master id, sample id, date,
    CDs, dollars)."""
    return {
        line.split()[0].lstrip("0") or "0" for line in path.read_text().splitlines() if line.split()
    }


def to_events(purchases: Purchases) -> pa.Table:
    """The input contract: one purchase event per line, event_time the date at midnight
    UTC, amount the dollar value, quantity the CDs. event_id (and order_id) is the
    customer, the date and the line's rank among that customer's lines of that date in
    file order, so the same file gives the same ids."""
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


def write_events(purchases: Purchases, raw: Path) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    path = raw / "events.parquet"
    pq.write_table(to_events(purchases), path)
    return path


@dataclass(frozen=True)
class Customers:
    """One row per customer (sorted by id): calibration summaries and holdout outcome.

    Days are whole days; ``first_day``/``last_day`` the first and last calibration
    purchase dates (days since 1970), ``purchase_days`` distinct calibration purchase
    dates, ``spend`` calibration dollars, ``repeat_mean_value`` mean dollars per repeat
    purchase date (NaN without one), ``holdout_spend`` dollars in the holdout window and
    ``holdout_purchased`` whether there was any purchase in it.
    """

    customer_id: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    purchase_days: np.ndarray
    spend: np.ndarray
    repeat_mean_value: np.ndarray
    holdout_spend: np.ndarray
    holdout_purchased: np.ndarray


def summarize(purchases: Purchases, *, as_of: dt.date, holdout_days: int) -> Customers:
    """Calibration summaries of every customer with a purchase before ``as_of``, and
    their spend in ``[as_of, as_of + holdout_days)``."""
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
