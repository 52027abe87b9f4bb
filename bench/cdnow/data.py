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
import polars as pl
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

EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("user_id", pa.string()),
        ("event_time", pa.timestamp("us")),
        ("event_type", pa.string()),
        ("quantity", pa.int64()),
        ("amount", pa.float64()),
        ("order_id", pa.string()),
    ]
)


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


# A purchase line: four whitespace-separated fields, the second a YYYYMMDD date (a header
# line does not match and is skipped).
LINE = r"^\s*(?<customer>\S+)\s+(?<date>\d+)\s+(?<quantity>\S+)\s+(?<amount>\S+)\s*$"


def read_master(path: Path) -> Purchases:
    """The purchase lines of a CDNOW_master-format file (whitespace separated; a header
    line, if any, is skipped)."""
    lines = pl.Series("line", path.read_text().splitlines()).to_frame()
    fields = lines.select(pl.col("line").str.extract_groups(LINE)).unnest("line")
    frame = fields.drop_nulls("customer").select(
        customer_id=pl.col("customer").str.strip_chars_start("0").replace("", "0"),
        day=pl.col("date").str.to_date("%Y%m%d").cast(pl.Int64),
        quantity=pl.col("quantity").cast(pl.Int64),
        amount=pl.col("amount").cast(pl.Float64),
    )
    return Purchases(
        frame["customer_id"].to_numpy().astype(object),
        frame["day"].to_numpy(),
        frame["quantity"].to_numpy(),
        frame["amount"].to_numpy(),
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
    date = pl.col("day").cast(pl.Date)
    rank = pl.int_range(pl.len()).over("user_id", "day")
    event_id = pl.format("{}-{}-{}", "user_id", date.dt.strftime("%Y%m%d"), rank)
    frame = _frame(purchases).select(
        event_id=event_id,
        user_id="user_id",
        event_time=date.cast(pl.Datetime("us")),
        event_type=pl.lit("purchase"),
        quantity="quantity",
        amount="amount",
        order_id=event_id,
    )
    return frame.to_arrow().cast(EVENTS_SCHEMA)


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
    lines = _frame(purchases)
    dates = (
        lines.filter(pl.col("day") < start)
        .group_by("user_id", "day")
        .agg(pl.col("amount").sum())
        .group_by("user_id")
        .agg(
            first_day=pl.col("day").min(),
            last_day=pl.col("day").max(),
            purchase_days=pl.len().cast(pl.Int64),
            repeat_total=pl.col("amount").filter(pl.col("day") != pl.col("day").min()).sum(),
        )
    )
    holdout = pl.col("day") >= start
    after = (
        lines.filter(pl.col("day") < end)
        .group_by("user_id")
        .agg(
            spend=pl.col("amount").filter(~holdout).sum(),
            holdout_spend=pl.col("amount").filter(holdout).sum(),
            holdout_purchased=holdout.any(),
        )
    )
    days = pl.col("purchase_days")
    customers = (
        dates.join(after, on="user_id", how="left")
        .sort("user_id")
        .select(
            "user_id",
            "first_day",
            "last_day",
            "purchase_days",
            "spend",
            pl.when(days > 1).then(pl.col("repeat_total") / (days - 1)).fill_null(np.nan),
            "holdout_spend",
            "holdout_purchased",
        )
    )
    columns = [column.to_numpy() for column in customers.iter_columns()]
    return Customers(columns[0].astype(object), *columns[1:])


def _frame(purchases: Purchases) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": pl.Series(purchases.customer_id.tolist(), dtype=pl.String),
            "day": purchases.day,
            "quantity": purchases.quantity,
            "amount": purchases.amount,
        }
    )
