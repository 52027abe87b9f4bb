"""What a history read costs the scoring API, by depth, and the layouts it was chosen over.

A plain script (not a test), in one process, no HTTP. It publishes a synthetic BI copy
(``synthetic_publication.py``, ``--users`` x ``--runs`` days) or takes one
(``--bi-db``), loads it as the server does (``load_snapshot``, the latest
``--history-days`` dates in memory) and times ``history_of`` for random users at each
``--limits`` (the CPU per read, p50/p99 wall time, the process's VmRSS). With
``--layouts`` it also times the one query per request over the whole history on copies
of the file: as published, with an ART index on ``user_id``, and rewritten sorted by
user, with what each cost to prepare.

    python bench/bench_history_reads.py --users 60000 --runs 365
    python bench/bench_history_reads.py --users 625000 --runs 8 --history-days 1 \
        --limits 1 2 8 --warehouse-order "as_of, hash(user_id)"   # a day's users unsorted
    python bench/bench_history_reads.py --bi-db /tmp/bi.duckdb --users 60000 --layouts
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from purchasing_power.api.snapshot import HISTORY, load_snapshot
from synthetic_publication import publish_synthetic

COLUMNS = (
    "as_of, model_version, model_status, predicted_spend, purchase_probability, power_index,"
    " tier, scored_at"
)


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _timed(read, users: int, *, reads: int, seed: int) -> tuple[float, float, float]:
    """CPU ms per read, p50 and p99 wall ms, over ``reads`` random users."""
    generator = random.Random(seed)
    for _ in range(3):
        read(f"u{generator.randrange(users):07d}")
    walls = []
    cpu = time.process_time()
    for _ in range(reads):
        start = time.perf_counter()
        read(f"u{generator.randrange(users):07d}")
        walls.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu
    walls.sort()
    return cpu / reads * 1000, walls[reads // 2] * 1000, walls[int(reads * 0.99)] * 1000


def reads_by_depth(
    database: Path, *, users: int, limits: list[int], history_days: int, reads: int
) -> None:
    start = time.perf_counter()
    snapshot = load_snapshot(database, history_days=history_days)
    older = snapshot.older_history
    print(
        f"loaded in {time.perf_counter() - start:.1f} s: {snapshot.history.row_count:,} history"
        f" rows in memory ({history_days} days), older dates in the file:"
        f" {len(older.dates) if older else 0}; VmRSS {_rss_mib():.0f} MiB"
    )
    print("| limit | entries | CPU ms / read | p50 ms | p99 ms | VmRSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for limit in limits:
        entries = len(snapshot.history_of("u0000000", limit=limit))
        cpu, p50, p99 = _timed(
            lambda user, limit=limit: snapshot.history_of(user, limit=limit),
            users, reads=reads, seed=limit,
        )  # fmt: skip
        print(f"| {limit} | {entries} | {cpu:.2f} | {p50:.2f} | {p99:.2f} | {_rss_mib():.0f} |")


def layouts(database: Path, *, users: int, limit: int, reads: int, work: Path) -> None:
    """The whole history queried per request, on copies of the file laid out three ways."""
    table = f"marts.{HISTORY}"
    prepare = {
        "as published": [],
        "ART index on user_id": [f"create index history_user on {table} (user_id)"],
        "sorted by user_id": [
            f"create table marts.sorted as select * from {table} order by user_id, as_of desc",
            f"drop table {table}",
            f"alter table marts.sorted rename to {HISTORY}",
        ],
    }
    print(f"| layout (limit {limit}) | prepare s | file MiB | CPU ms / read | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, statements in prepare.items():
        copy = work / f"layout-{len(statements)}.duckdb"
        shutil.copyfile(database, copy)
        start = time.perf_counter()
        with duckdb.connect(str(copy)) as connection:
            for statement in statements:
                connection.execute(statement)
            connection.execute("checkpoint")
        prepared = time.perf_counter() - start
        connection = duckdb.connect(config={"threads": 1, "memory_limit": "128MB"})
        connection.execute(f"attach '{copy}' as published (read_only)")
        sql = (
            f"select {COLUMNS} from published.{table} where user_id = $user_id"
            f" order by as_of desc, scored_at desc, model_version desc limit $limit"
        )
        cpu, p50, p99 = _timed(
            lambda user, connection=connection, sql=sql: connection.execute(
                sql, {"user_id": user, "limit": limit}
            ).fetchall(),
            users, reads=reads, seed=1,
        )  # fmt: skip
        connection.close()
        size = copy.stat().st_size / 2**20
        print(f"| {name} | {prepared:.1f} | {size:.0f} | {cpu:.2f} | {p50:.2f} | {p99:.2f} |")
        copy.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=365, help="days of history published")
    parser.add_argument("--bi-db", type=Path, help="a published copy to read instead")
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--limits", type=int, nargs="+", default=[30, 31, 100, 365])
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--layouts", action="store_true")
    parser.add_argument(
        "--warehouse-order",
        help="SQL order of the warehouse's history before it is published (default: by day"
        " and user)",
    )
    args = parser.parse_args()
    print(f"1-minute load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-history-") as work:
        database = args.bi_db
        if database is None:
            database = Path(work) / "purchasing_power_bi.duckdb"
            print(f"publishing {args.users:,} users x {args.runs} days", flush=True)
            start = time.perf_counter()
            publish_synthetic(database, users=args.users, runs=args.runs,
                              history_order=args.warehouse_order)  # fmt: skip
            print(f"published in {time.perf_counter() - start:.1f} s (with the synthetic marts)")
        reads_by_depth(database, users=args.users, limits=args.limits,
                       history_days=args.history_days, reads=args.reads)  # fmt: skip
        if args.layouts:
            layouts(database, users=args.users, limit=100, reads=args.reads, work=Path(work))
    print(f"1-minute load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
