"""A zoo of shops: every generator preset written into its own folder, for an accuracy bench.

A plain script (not a test). For each preset (``purchasing_power.regimes.PRESETS``) it
writes ``<out>/<preset>/`` (events, users, items, ground_truth) with the same users and
seed, each over the preset's own history, and prints what it wrote and the figures that
tell the shops apart (``SHOP_STATS``). It runs no dbt: point a
build at one shop with ``--vars '{raw_path: <out>/<preset>}'`` (``young``, four months,
also needs ``horizon_days: 30``: a 90-day horizon leaves it fewer than two labelled cutoffs).

    python bench/zoo.py --out /tmp/zoo --users 2000 --seed 42
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import duckdb

from purchasing_power.generate import PRESETS, GeneratedData, GeneratorSettings, generate

# the figures that tell the shops apart (tests/test_generate.py holds each preset to its own)
SHOP_STATS = """
with ev as (select * from '{events}'),
purchases as (select * from ev where event_type = 'purchase'),
orders as (
    select order_id, user_id, min(event_time) as ordered_at, sum(amount) as order_value,
           count(distinct category) as categories
    from purchases group by all
),
customers as (
    select user_id, min(event_time) as first_purchase_at,
           count(distinct event_time::date) as purchase_days
    from purchases group by 1
),
quarters as (
    select distinct user_id, datediff('day', date '{start}', event_time::date) // 91 as qtr
    from purchases
),
users as (select * from '{users}')
select
    (select list(distinct event_type order by event_type) from ev) as event_types,
    (select count(*) from orders) / (select count(*) from customers) as orders_per_customer,
    (select median(order_value) from orders) as median_order_value,
    (select quantile_cont(order_value, 0.9) from orders) as p90_order_value,
    (select quantile_cont(order_value, 0.9) / median(order_value) from orders)
        as p90_over_median_order_value,
    (select avg(categories) from orders) as categories_per_order,
    (select avg(n) from (select count(*) / (select count(*) from customers) as n
                         from quarters where qtr < 4 group by qtr)) as quarter_buyer_share,
    (select count(*) filter (where event_type = 'page_view') from ev)
        / (select count(*) from purchases) as views_per_purchase_line,
    (select count(*) filter (where event_type = 'refund') from ev)
        / (select count(*) from purchases) as refunds_per_purchase_line,
    (select sum(amount) filter (where month(event_time) = 12) / sum(amount) from purchases)
        as december_spend_share,
    (select max(datediff('day', date '{start}', first_purchase_at)) from customers)
        as last_first_purchase_day,
    (select avg((purchase_days <= 2)::int) from customers) as share_two_purchase_days_or_fewer,
    (select count(*) filter (where event_time <> event_time::date) from ev) as not_at_midnight,
    (select count(session_id) from ev) as with_session_id,
    (select count(*) filter (where event_time >= date '{start}' + {days} - 91)
            / count(*) filter (where event_time >= date '{start}' + 91
                               and event_time < date '{start}' + 182) from purchases)
        as last_over_second_quarter_purchases,
    (select datediff('day', min(event_time), max(event_time)) from ev) as span_days,
    (select count(*) filter (where signed_up_at < date '{start}') from users) as signed_up_before,
    (select count(*) filter (where signed_up_at >= date '{start}' + {days} - 30)
            / count(*) filter (where signed_up_at >= date '{start}'
                               and signed_up_at < date '{start}' + 30) from users)
        as late_over_early_signups
"""


def shop_stats(data: GeneratedData, *, start: dt.date, days: int) -> dict[str, object]:
    """The ``SHOP_STATS`` figures of one generated shop, by name."""
    query = SHOP_STATS.format(
        events=data.events_path, users=data.users_path, start=start, days=days
    )
    cursor = duckdb.connect().execute(query)
    return dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))


def write_zoo(
    out: Path, *, users: int, seed: int, presets: tuple[str, ...] = tuple(PRESETS)
) -> dict[str, GeneratedData]:
    """Generate each preset into ``out/<preset>``; return what was written, by preset."""
    shops = {}
    for preset in presets:
        settings = GeneratorSettings(users=users, seed=seed, preset=preset)  # type: ignore[arg-type]
        started = time.perf_counter()
        data = generate(out / preset, settings=settings)
        seconds = time.perf_counter() - started
        regime = PRESETS[preset]
        print(
            f"{preset:8s} {regime.days:4d} days {data.events:>11,} events "
            f"{data.users:>7,} users {data.items:>6,} items {seconds:6.1f} s  {data.out_dir}",
            flush=True,
        )
        shops[preset] = data
    return shops


def print_stats(shops: dict[str, GeneratedData], *, start: dt.date, days: dict[str, int]) -> None:
    stats = {p: shop_stats(data, start=start, days=days[p]) for p, data in shops.items()}
    print(f"{'':36s}" + "".join(f"{p:>10s}" for p in stats))
    for name in next(iter(stats.values())):
        cells = (stats[p][name] for p in stats)
        print(f"{name:36s}" + "".join(f"{_cell(value):>10s}" for value in cells))


def _cell(value: object) -> str:
    if isinstance(value, list):
        return str(len(value)) + " types"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the shops into")
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--presets",
        nargs="+",
        choices=list(PRESETS),
        default=list(PRESETS),
        help="which shops (default: all)",
    )
    args = parser.parse_args()
    shops = write_zoo(args.out, users=args.users, seed=args.seed, presets=tuple(args.presets))
    days = {preset: PRESETS[preset].days for preset in shops}
    print_stats(shops, start=GeneratorSettings().start_date, days=days)
    print(f"wrote {len(shops)} shops to {args.out}")


if __name__ == "__main__":
    main()
