"""Publishing a score history that grows every build: by ``as_of`` against whole.

A plain script (not a test). It writes a synthetic ``purchasing_power_score_history``
(the mart's columns; ``--users`` scores a day for ``--runs`` days, random values from a
fixed seed) into a DuckDB file, then times ``publish`` (what ``marts.bi_publications``
runs) in the same run:

- whole, as before partitioned publishing: the history copied in full;
- by ``as_of``, the first publication (every ``as_of`` copied);
- after one more day of scores: whole again, and by ``as_of`` (one ``as_of`` copied);
- by ``as_of`` with nothing changed.

It checks that both published copies hold the warehouse's rows (count and a checksum of
every column) and reports the ratio of the daily publication by ``as_of`` to the whole
copy.

    python bench/bench_publish.py                   # 625,000 users x 60 days, ~2 minutes
    python bench/bench_publish.py --users 62500     # a quick look

Writes ``bench/results/<date>-publish.json`` and ``.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from measure import REPO, machine, write_result
from purchasing_power.publish import PublishSettings, publish

RESULTS = REPO / "bench" / "results"
HISTORY = "purchasing_power_score_history"
CHECKSUM = "select count(*), sum(hash(*columns(*))::hugeint) from {}"


@dataclass(frozen=True)
class Publication:
    label: str
    runs: int
    rows: int
    wall_seconds: float
    duckdb_mib: float
    parquet_mib: float


def _history(connection: duckdb.DuckDBPyConnection, *, users: int, runs: int) -> None:
    connection.execute("select setseed(0.5)")
    connection.execute(
        f"""
        create table {HISTORY} as
        select
            'u' || user_number as user_id,
            date '2026-01-01' + day::int as as_of,
            30 as horizon_days,
            'pp-20260101-000000-0000000000' as model_version,
            'accepted' as model_status,
            random() * 500 as predicted_spend,
            random() as purchase_probability,
            random() * 100 as power_index,
            ['low', 'mid', 'high', 'premium'][1 + (user_number % 4)::int] as tier,
            'CPUExecutionProvider' as execution_provider,
            'tree_ensemble' as scoring_graph,
            timestamp '2026-01-01 06:00:00' + to_days(day::int) as scored_at
        from range({runs}) as days(day), range({users}) as scored(user_number)
        """
    )


def _add_day(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(
        f"""
        insert into {HISTORY}
        select * replace (
            as_of + 1 as as_of,
            scored_at + interval 1 day as scored_at,
            random() * 500 as predicted_spend
        )
        from {HISTORY} where as_of = (select max(as_of) from {HISTORY})
        """
    )


def _size_mib(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(file.stat().st_size for file in files) / 2**20


def _publish(
    connection: duckdb.DuckDBPyConnection, out: Path, label: str, *, by_as_of: bool
) -> Publication:
    settings = PublishSettings(database=out / ("by_as_of.duckdb" if by_as_of else "whole.duckdb"))
    start = time.perf_counter()
    published = publish(
        connection,
        {HISTORY: connection.table(HISTORY)},
        schema="marts",
        settings=settings,
        partitioned_by={HISTORY: "as_of"} if by_as_of else None,
    )
    wall = time.perf_counter() - start
    expected = connection.execute(CHECKSUM.format(HISTORY)).fetchall()
    with duckdb.connect(str(settings.database), read_only=True) as copy:
        assert copy.execute(CHECKSUM.format(f"marts.{HISTORY}")).fetchall() == expected, label
    parquet = settings.parquet_dir / (HISTORY if by_as_of else f"{HISTORY}.parquet")
    pattern = f"{parquet}/*.parquet" if by_as_of else str(parquet)
    with duckdb.connect() as reader:
        read = reader.execute(CHECKSUM.format(f"read_parquet('{pattern}')")).fetchall()
    assert read == expected, label
    ((runs,),) = connection.execute(f"select count(distinct as_of) from {HISTORY}").fetchall()
    return Publication(
        label=label,
        runs=runs,
        rows=published.column("row_count")[0].as_py(),
        wall_seconds=round(wall, 2),
        duckdb_mib=round(_size_mib(settings.database), 1),
        parquet_mib=round(_size_mib(parquet), 1),
    )


def render(result: dict) -> str:
    lines = [
        f"`bench/bench_publish.py --users {result['users']} --runs {result['runs']}`: "
        f"{result['threads']} DuckDB threads, memory limit {result['memory_limit']}, "
        f"{result['date']}, {result['machine']['cpus']} CPUs / "
        f"{result['machine']['memory_gib']} GiB",
        "",
        "| publication | as_of | rows | wall s | DuckDB MiB | Parquet MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {p['label']} | {p['runs']} | {p['rows']:,} | {p['wall_seconds']:.1f} | "
        f"{p['duckdb_mib']:.0f} | {p['parquet_mib']:.0f} |"
        for p in result["publications"]
    ]
    lines += [
        "",
        f"A new day published by `as_of` / the whole history copied, in the same run: "
        f"**{result['daily_ratio']:.3f}**. Both copies hold the warehouse's rows (count and a "
        "checksum of every column, in DuckDB and in Parquet).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=625_000)
    parser.add_argument("--runs", type=int, default=60, help="daily scores already published")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="5GB")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-publish-") as work:
        out = Path(work)
        connection = duckdb.connect(str(out / "warehouse.duckdb"))
        connection.execute(f"set threads = {args.threads}")
        connection.execute(f"set memory_limit = '{args.memory_limit}'")
        _history(connection, users=args.users, runs=args.runs)
        publications = [
            _publish(connection, out, "whole (as before)", by_as_of=False),
            _publish(connection, out, "by as_of, first publication", by_as_of=True),
        ]
        _add_day(connection)
        publications += [
            _publish(connection, out, "whole (as before), one more day", by_as_of=False),
            _publish(connection, out, "by as_of, one more day", by_as_of=True),
            _publish(connection, out, "by as_of, nothing changed", by_as_of=True),
        ]
        connection.close()
    for publication in publications:
        print(f"  {publication.label:<34} {publication.wall_seconds:6.1f} s", flush=True)

    whole, daily = publications[2], publications[3]
    result = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "users": args.users,
        "runs": args.runs,
        "threads": args.threads,
        "memory_limit": args.memory_limit,
        "publications": [asdict(publication) for publication in publications],
        "daily_ratio": daily.wall_seconds / whole.wall_seconds,
    }
    table = render(result)
    print(table)
    write_result(args.out, f"{result['date']}-publish", result, table)


if __name__ == "__main__":
    main()
