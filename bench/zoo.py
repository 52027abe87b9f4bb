"""A zoo of shops judged on a held-out horizon: every generator preset, and CDNOW, the
model against every baseline (issue 34, point 5), and the category demand forecast
against what then sold (issue 39, point 3).

A plain script (not a test). Each preset (``purchasing_power.regimes.PRESETS``) is
written into ``<work>/<preset>/raw`` with the same users and seed over the preset's own
history, without dirty rows (so that its raw events are what was bought), and:

1. ``dbt build`` with ``as_of`` one horizon before the end of the data (``retrain:
   true``), so that the last horizon is held out (``holdout.build``);
2. the model (what ``purchasing_power_scores`` holds, whatever scored it) and every
   baseline of the gate (``baselines.fit_and_predict``, fitted on all of
   ``training_examples``) are judged on every scored user against the raw events of the
   held-out horizon (``holdout.judge``);
3. ``dbt build`` again into the same warehouse at the end of the data, scored by the
   first build's model (``model_version`` pinned, no training), so that
   ``category_demand_accuracy`` checks the first build's forecast per category
   (``DEMAND``).

The horizon is 90 days, but 30 for ``young`` (four months of history) and 273 (39 weeks,
CDNOW's standard split) for ``cdnow``. CDNOW itself (``bench/cdnow/data.py``: the wheel,
its sha256, the input contract) is built and judged the same way at ``as_of``
1997-10-01 over its 273 holdout days, on the whole log; it has no categories, so no
demand build.

Prints the tables and writes them to ``bench/results/<date>-zoo.md`` (and .json).

    .venv/bin/python bench/zoo.py                                # every preset, 2,000 users, CDNOW
    .venv/bin/python bench/zoo.py --presets grocery --users 3000 --no-cdnow
    .venv/bin/python bench/zoo.py --work /tmp/zoo --users 800 --seed 5 --dirty-fraction 0.002 \\
        --write-only                 # only the shops, and the figures that tell them apart
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import duckdb

import holdout
from cdnow import data as cdnow
from measure import REPO, Warehouse, machine, write_result
from purchasing_power.generate import PRESETS, GeneratedData, GeneratorSettings, generate

HORIZON_DAYS = {"young": 30, "cdnow": 273}  # else 90
DEFAULT_HORIZON_DAYS = 90
CDNOW = "CDNOW"

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
    out: Path,
    *,
    users: int,
    seed: int,
    presets: tuple[str, ...] = tuple(PRESETS),
    dirty_fraction: float = 0.0,
) -> dict[str, GeneratedData]:
    """Generate each preset into ``out/<preset>``; return what was written, by preset."""
    shops = {}
    for preset in presets:
        settings = GeneratorSettings(
            users=users,
            seed=seed,
            preset=preset,  # type: ignore[arg-type]
            dirty_fraction=dirty_fraction,
        )
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


# What the demand forecast of one as_of was worth across categories, once its horizon
# had passed (the page docs/category-demand.md shows the same query).
DEMAND = """
select
    count(*) as categories,
    avg(absolute_percentage_error) as mape,
    median(absolute_percentage_error) as median_ape,
    arg_max(category, absolute_percentage_error) as worst_category,
    max(absolute_percentage_error) as worst_ape,
    100 * sum(abs(expected_spend - actual_spend)) / sum(actual_spend) as wape,
    100 * (sum(expected_spend) - sum(actual_spend)) / sum(actual_spend) as bias_percent,
    100 * (sum(expected_spend) - sum(actual_spend_all_users)) / sum(actual_spend_all_users)
        as bias_percent_all_users,
    sum(expected_spend) as expected_spend,
    sum(actual_spend) as actual_spend,
    sum(actual_spend_all_users) as actual_spend_all_users
from marts.category_demand_accuracy
where as_of = $as_of
"""


def demand_accuracy(warehouse: Path, *, as_of: dt.date) -> dict[str, object]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        cursor = connection.execute(DEMAND, {"as_of": as_of})
        names = [column[0] for column in cursor.description]
        (row,) = cursor.fetchall()
    return dict(zip(names, row, strict=True))


def scored_by(warehouse: Path) -> str:
    """The one model_version that scored the warehouse's users."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        versions = connection.execute(
            "select distinct model_version from marts.purchasing_power_scores"
        ).fetchall()
    if len(versions) != 1:
        raise RuntimeError(f"{warehouse}: scored by {len(versions)} model versions, not one")
    return versions[0][0]


def run_shop(
    name: str,
    *,
    raw: Path,
    events: list[Path],
    end: dt.date,
    horizon_days: int,
    work: Path,
    extra_vars: dict,
    with_demand: bool,
    fresh: bool = True,
) -> dict[str, object]:
    """Hold out the last ``horizon_days`` before ``end`` (the day after the data), build
    (into an emptied warehouse where ``fresh``), judge, and where asked build again at
    ``end`` for the demand forecast's accuracy."""
    as_of = end - dt.timedelta(days=horizon_days)
    shop: dict[str, object] = {"shop": name, "as_of": as_of.isoformat(),
                               "horizon_days": horizon_days}  # fmt: skip
    built = holdout.build(raw, work, as_of=as_of, horizon_days=horizon_days, fresh=fresh,
                          extra_vars={"retrain": True, **extra_vars})  # fmt: skip
    shop["build"] = asdict(built)
    print(f"{name}: dbt build at {as_of} ({horizon_days}-day horizon) "
          f"{'ok' if built.succeeded else 'FAILED'} in {built.seconds:.0f} s "
          f"(load {built.load_average:.1f})\n{built.tail}", flush=True)  # fmt: skip
    warehouse = Warehouse(work).path
    try:
        judged = holdout.judge(work, events, as_of=as_of)
    except (duckdb.Error, ValueError, KeyError) as error:  # a build that stopped early
        print(f"{name}: not judged: {error}", flush=True)
        shop["error"] = str(error)
        return shop
    shop.update(asdict(judged))
    shop["beats_every_baseline"] = holdout.beats_every_baseline(judged.rows)
    print(holdout.markdown_table(judged.rows), flush=True)
    if not with_demand:
        return shop
    pinned = scored_by(warehouse)
    again = holdout.build(raw, work, as_of=end, horizon_days=horizon_days, fresh=False,
                          extra_vars={"model_version": pinned, **extra_vars})  # fmt: skip
    shop["demand_build"] = asdict(again)
    print(f"{name}: dbt build at {end} (scored by {pinned}) "
          f"{'ok' if again.succeeded else 'FAILED'} in {again.seconds:.0f} s\n{again.tail}",
          flush=True)  # fmt: skip
    shop["demand"] = demand_accuracy(warehouse, as_of=as_of)
    print(f"{name}: demand {shop['demand']}", flush=True)
    return shop


# --------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------


def _number(value: object, digits: int = 1) -> str:
    if value is None or value != value:
        return ""
    return f"{value:,.{digits}f}"


def render(result: dict) -> str:
    """The markdown of a zoo result (its JSON)."""
    shops = result["shops"]
    lines = [
        f"# The zoo: the model against every baseline on a held-out horizon, {result['date']}",
        "",
        f"`{result['command']}` at {result['commit']}; {result['machine']['cpus']} CPUs, "
        f"{result['seconds']:.0f} s in all, load average at the end "
        f"{result['load_average']:.1f}",
        "",
        "Every scored user (non-buyers included), against net spend and any purchase in the "
        "held-out horizon after `as_of`. The model's row is what scored, with its status "
        "(`baseline` or `fallback`: BTYD on all history scored, not a trained model); its "
        "last column says whether it beats every baseline on normalized Gini and AUC.",
        "",
        "| shop | method | MAE | RMSE | Spearman | normalized Gini | top-decile capture"
        " | total bias % | AUC | beats every baseline |",
        "|---|---|" + "---:|" * len(holdout.COLUMNS) + "---|",
    ]
    for shop in shops:
        if "rows" not in shop:
            lines.append(f"| {shop['shop']} | not judged: {shop.get('error', '')} |"
                         + " |" * (len(holdout.COLUMNS) + 1))  # fmt: skip
            continue
        for method, figures in shop["rows"].items():
            cells = [holdout.format_cell(name, figures[name]) for name in holdout.COLUMNS]
            beats, name = "", method
            if method == holdout.MODEL:
                beats, name = shop["beats_every_baseline"], f"model ({shop['model_status']})"
            lines.append(f"| {shop['shop']} | {name} | " + " | ".join(cells) + f" | {beats} |")
    lines += [
        "",
        "| shop | as_of | horizon (label window) | users | buyers in the horizon "
        "| build s (load) | what scored |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for shop in shops:
        window = shop.get("label_horizon_days", shop["horizon_days"])
        horizon = f"{shop['horizon_days']}" + ("" if window == shop["horizon_days"]
                                               else f" ({window})")  # fmt: skip
        build = shop["build"]
        lines.append(
            f"| {shop['shop']} | {shop['as_of']} | {horizon} | {_number(shop.get('users'), 0)} "
            f"| {_number(shop.get('buyers'), 0)} | {build['seconds']:.0f} "
            f"({build['load_average']:.1f}) | {shop.get('notes', {}).get(holdout.MODEL, '')} |"
        )
    scaled = sorted({note for shop in shops for method, note in shop.get("notes", {}).items()
                     if method != holdout.MODEL and note})  # fmt: skip
    if scaled:
        lines += ["", "Baselines where the label window is shorter than the horizon: spend "
                  "scaled by horizon / window (" + "; ".join(scaled) + ")."]  # fmt: skip
    demand = [shop for shop in shops if shop.get("demand")]
    if demand:
        lines += [
            "",
            "## Category demand: the forecast at `as_of` against what was then bought",
            "",
            "| shop | categories | MAPE % | median APE % | worst category (APE %) | WAPE % "
            "| total bias % | bias % against everyone's spend | demand build s |",
            "|---|---:|---:|---:|---|---:|---:|---:|---:|",
        ]
        for shop in demand:
            figures = shop["demand"]
            lines.append(
                f"| {shop['shop']} | {figures['categories']} | {_number(figures['mape'])} "
                f"| {_number(figures['median_ape'])} | {figures['worst_category']} "
                f"({_number(figures['worst_ape'])}) | {_number(figures['wape'])} "
                f"| {_number(figures['bias_percent'])} "
                f"| {_number(figures['bias_percent_all_users'])} "
                f"| {shop['demand_build']['seconds']:.0f} |"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2_000, help="users of each preset's shop")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--presets",
        nargs="+",
        choices=list(PRESETS),
        default=list(PRESETS),
        help="which shops (default: all)",
    )
    parser.add_argument("--cdnow", action=argparse.BooleanOptionalAction, default=True,
                        help="CDNOW too (downloads the lifetimes wheel once)")  # fmt: skip
    parser.add_argument("--demand", action=argparse.BooleanOptionalAction, default=True,
                        help="the second build, for the demand forecast's accuracy")  # fmt: skip
    parser.add_argument("--dirty-fraction", type=float, default=0.0,
                        help="generator dirty rows (the truth reads the raw events)")  # fmt: skip
    parser.add_argument("--work", type=Path, default=REPO / "data" / "zoo",
                        help="shops and warehouses (git-ignored by default)")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=REPO / "data" / "cdnow",
                        help="where CDNOW's wheel is kept")  # fmt: skip
    parser.add_argument("--training-threads", type=int, default=None,
                        help="the dbt var training_threads (default: the project's)")  # fmt: skip
    parser.add_argument("--write-only", action="store_true",
                        help="write the shops and print what tells them apart; no dbt")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    started = time.monotonic()

    shops = write_zoo(args.work, users=args.users, seed=args.seed, presets=tuple(args.presets),
                      dirty_fraction=args.dirty_fraction)  # fmt: skip
    days = {preset: PRESETS[preset].days for preset in shops}
    start = GeneratorSettings().start_date
    print_stats(shops, start=start, days=days)
    print(f"wrote {len(shops)} shops to {args.work}")
    if args.write_only:
        return {}

    extra = {} if args.training_threads is None else {"training_threads": args.training_threads}
    judged = []
    for preset, data in shops.items():
        judged.append(run_shop(
            preset, raw=data.out_dir, events=[data.events_path],
            end=start + dt.timedelta(days=days[preset]),
            horizon_days=HORIZON_DAYS.get(preset, DEFAULT_HORIZON_DAYS),
            work=args.work / preset / "build", extra_vars=extra, with_demand=args.demand,
        ))  # fmt: skip
    if args.cdnow:
        master, _ = cdnow.fetch(args.cache)
        purchases = cdnow.read_master(master)
        raw = args.work / CDNOW / "raw"
        events = cdnow.write_events(purchases, raw)
        judged.append(run_shop(
            CDNOW, raw=raw, events=[events],
            end=cdnow.AS_OF + dt.timedelta(days=cdnow.HOLDOUT_DAYS),
            horizon_days=cdnow.HOLDOUT_DAYS, work=args.work / CDNOW / "build",
            extra_vars=extra, with_demand=False,
        ))  # fmt: skip

    result = {
        "date": dt.date.today().isoformat(),
        "command": shlex.join(
            ["python", "bench/zoo.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "commit": holdout.commit(),
        "users": args.users,
        "seed": args.seed,
        "seconds": time.monotonic() - started,
        "load_average": os.getloadavg()[0],
        "machine": machine(),
        "shops": judged,
    }
    text = render(result)
    print(text)
    write_result(args.out, f"{result['date']}-zoo", result, text)
    return result


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


if __name__ == "__main__":
    main()
