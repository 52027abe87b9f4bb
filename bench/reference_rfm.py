"""The reference for what DuckDB can do (issue 6): RFM features at every cutoff computed by
one hand-written DuckDB query straight from the raw Parquet, no dbt, no intermediate
tables. ``bench/run.py`` times it against the dbt feature models in the same run.

It computes the recency, frequency and monetary columns of ``user_purchase_features``
with the same definitions (windows ``[cutoff - w, cutoff)``, orders dated by their first
line, amounts defaulting to price x quantity) after the same cleaning as
``int_events_validated`` for Parquet input (exact duplicates collapsed, conflicting
versions dropped, ids and time present, a known event type, valid numbers, before
``as_of``). It skips what RFM does not need: sessions, the quarantine table, the other
feature families.

    python bench/reference_rfm.py --events raw/events.parquet --as-of 2026-05-16 \\
        --cutoffs 2026-02-15,2026-01-16 --out reference.parquet
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import duckdb

SEED = Path(__file__).resolve().parents[1] / "seeds" / "event_types.csv"

# One statement. Exact duplicates collapse and every version of a conflicting event_id
# is dropped (as int_events_validated does); the surviving events are read twice (days
# and orders), so they are materialized, five narrow columns only.
QUERY = """
with

event_types as (
    select raw_event_type, event_type from read_csv('{seed}', header = true)
),

raw_events_deduplicated as (
    select * from (select distinct * from read_parquet('{events}'))
    qualify count(*) over (partition by event_id) = 1
),

events as materialized (
    select
        raw.user_id,
        cast(raw.event_time as date) as event_date,
        event_types.event_type,
        coalesce(cast(raw.order_id as varchar), cast(raw.event_id as varchar)) as order_key,
        coalesce(raw.amount, raw.price * coalesce(raw.quantity, 1), 0) as amount
    from raw_events_deduplicated as raw
    inner join event_types
        on lower(trim(cast(raw.event_type as varchar))) = event_types.raw_event_type
    where
        raw.event_id is not null
        and raw.user_id is not null
        and raw.event_time is not null
        and raw.event_time < $as_of
        and coalesce(raw.price >= 0 and isfinite(raw.price), true)
        and coalesce(raw.amount >= 0 and isfinite(raw.amount), true)
        and coalesce(raw.quantity > 0, true)
        and coalesce(raw.rating between 1 and 5, true)
),

user_days as (
    select
        user_id,
        event_date as activity_date,
        count(*) filter (where event_type = 'purchase') as purchase_lines,
        coalesce(sum(amount) filter (where event_type = 'purchase'), 0) as purchase_amount,
        coalesce(sum(amount) filter (where event_type = 'refund'), 0) as refund_amount
    from events
    group by user_id, event_date
),

orders as (
    select user_id, min(event_date) as activity_date, sum(amount) as order_amount
    from events
    where event_type = 'purchase'
    group by user_id, order_key
),

order_days as (
    select user_id, activity_date, count(*) as orders, max(order_amount) as max_order_amount
    from orders
    group by user_id, activity_date
),

days as (
    select
        user_days.*,
        coalesce(order_days.orders, 0) as orders,
        order_days.max_order_amount
    from user_days
    left join order_days using (user_id, activity_date)
),

cutoffs as (
    select unnest($cutoffs::date[]) as cutoff_date
),

features as (
    select
        days.user_id,
        cutoffs.cutoff_date,
        date_diff('day', max(days.activity_date) filter (where days.purchase_lines > 0),
                  cutoffs.cutoff_date) as days_since_last_purchase,
        date_diff('day', max(days.activity_date), cutoffs.cutoff_date) as days_since_last_event,
        date_diff('day', min(days.activity_date), cutoffs.cutoff_date) as days_since_first_event,
        date_diff('day', min(days.activity_date) filter (where days.purchase_lines > 0),
                  cutoffs.cutoff_date) as days_since_first_purchase,
        {order_windows}
        sum(days.orders) as count_orders_lifetime,
        {spend_windows}
        sum(days.purchase_amount) as sum_purchase_amount_lifetime,
        coalesce(sum(days.refund_amount)
                 filter (where days.activity_date >= cutoffs.cutoff_date - 90), 0)
            as sum_refund_amount_90d,
        sum(days.refund_amount) as sum_refund_amount_lifetime,
        sum(days.purchase_lines) as count_purchase_lines_lifetime,
        count(*) filter (where days.purchase_lines > 0) as count_purchase_days_lifetime,
        sum(days.purchase_amount) filter (where days.activity_date >= cutoffs.cutoff_date - 365)
            / nullif(sum(days.orders)
                     filter (where days.activity_date >= cutoffs.cutoff_date - 365), 0)
            as avg_order_amount_365d,
        sum(days.purchase_amount) / nullif(sum(days.orders), 0) as avg_order_amount_lifetime,
        max(days.max_order_amount) as max_order_amount_lifetime,
        sum(days.refund_amount) / nullif(sum(days.purchase_amount), 0)
            as ratio_refund_to_purchase_amount_lifetime
    from days
    inner join cutoffs on days.activity_date < cutoffs.cutoff_date
    group by days.user_id, cutoffs.cutoff_date
)

select * from features
"""


def reference_query(events: Path) -> str:
    def window(measure: str, column: str, days: int) -> str:
        return (
            f"coalesce(sum(days.{measure}) filter (where days.activity_date >= "
            f"cutoffs.cutoff_date - {days}), 0) as {column}_{days}d,"
        )

    return QUERY.format(
        seed=SEED,
        events=events,
        order_windows="\n        ".join(
            window("orders", "count_orders", days) for days in (7, 30, 90, 365)
        ),
        spend_windows="\n        ".join(
            window("purchase_amount", "sum_purchase_amount", days) for days in (30, 60, 90, 365)
        ),
    )


def run(
    events: Path,
    *,
    as_of: dt.date,
    cutoffs: list[dt.date],
    out: Path,
    threads: int = 2,
    memory_limit: str = "8GB",
) -> int:
    """Compute the reference features into ``out`` (Parquet); returns the row count."""
    with duckdb.connect(config={"threads": threads, "memory_limit": memory_limit}) as connection:
        connection.execute("set preserve_insertion_order = false")
        connection.execute(
            f"copy ({reference_query(events)}) to '{out}' (format parquet)",
            {"as_of": as_of, "cutoffs": cutoffs},
        )
        return int(connection.execute(f"select count(*) from '{out}'").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--cutoffs", required=True, help="comma-separated YYYY-MM-DD")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="8GB")
    args = parser.parse_args()
    cutoffs = [dt.date.fromisoformat(day) for day in args.cutoffs.split(",")]
    rows = run(args.events, as_of=args.as_of, cutoffs=cutoffs, out=args.out,
               threads=args.threads, memory_limit=args.memory_limit)  # fmt: skip
    print(f"wrote {rows:,} rows to {args.out}")


if __name__ == "__main__":
    main()
