"""The generated columns as Arrow tables in the input contract, and their files."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from purchasing_power.generate.population import _Calendar, _Cat, _Items, _Users
from purchasing_power.generate.vocabulary import (
    _AGE_BANDS,
    _BAD_TIME_STRINGS,
    _CHANNELS,
    _INT_NULL,
    _REGIONS,
    _REVIEW_TEXTS,
    _SECONDS_PER_DAY,
    _TIME_NULL,
    _UNKNOWN_EVENT_TYPES,
)
from purchasing_power.regimes import EVENT_TYPES


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


def _users_table(users: _Users, start_date: datetime.date, csv: bool) -> pa.Table:
    n = len(users.power)
    signed = users.signup_sec
    return pa.table(
        {
            "user_id": _id_strings("u", np.arange(n), 6, n - 1),
            "signed_up_at": _time_strings(signed, start_date)
            if csv
            else _timestamps(signed, start_date),
            "region": _dictionary(users.region, [r[0] for r in _REGIONS]),
            "age_band": _dictionary(users.age, [a[0] for a in _AGE_BANDS]),
        }
    )


def _items_table(items: _Items, cat: _Cat) -> pa.Table:
    n = len(items.category)
    return pa.table(
        {
            "item_id": _id_strings("i", np.arange(n), 5, n - 1),
            "category": _dictionary(items.category, cat.names),
            "list_price": pa.array(items.list_price, pa.float64()),
            "brand": _dictionary(items.brand, list(items.brand_names)),
        }
    )


def _ground_truth_table(
    users: _Users, expected_daily_spend: np.ndarray, cal: _Calendar
) -> pa.Table:
    n = len(users.power)
    churn = np.where(users.churn_sec < cal.end_sec, users.churn_sec, _TIME_NULL)
    return pa.table(
        {
            "user_id": _id_strings("u", np.arange(n), 6, n - 1),
            "latent_power": pa.array(users.power, pa.float64()),
            "activity_rate": pa.array(users.activity, pa.float64()),
            "purchase_rate": pa.array(users.purchase_rate, pa.float64()),
            "churned_at": _timestamps(churn, cal.start_date),
            "expected_daily_spend": pa.array(expected_daily_spend, pa.float64()),
        }
    )


def _write(table: pa.Table, path: Path, csv: bool) -> None:
    if csv:
        options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
        pacsv.write_csv(table, path, write_options=options)
    else:
        pq.write_table(table, path, compression="zstd")
