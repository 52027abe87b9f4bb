"""Does a change to the feature models change any feature? Builds ``user_features`` on one
generated shop with the models of a git ref (default ``main``) and with the working
tree's, each both ways, and compares them row for row.

A plain script (not a test). The shop's events arrive in two deliveries: all but the
last ``--new-days`` days, then those days. Each side builds ``+user_features`` (``dbt
seed``, then ``dbt run``) from the first delivery and reruns it after the second (the
incremental build), and builds once from both deliveries (the full build). The ref's
models come from ``git archive``; both sides run the installed Python package.

For each build the two ``features.user_features`` tables are compared without
``built_from`` (a hash of the model's SQL file among others, so it differs whenever the
SQL does): row counts, ``except all`` both ways, and the md5 of the rows sorted by user
and cutoff, exported as CSV. Exits non-zero when any pair differs. Also prints each side's
seconds per feature model, from dbt's ``run_results.json``, for the full build and the
rerun (one run each: a rough look).

With ``--time-repeat N``, each feature model's compiled SQL (full build, and rerun) is
then timed in DuckDB on a copy of each side's warehouse, sides alternating, best of N:
the rerun's with the model's latest cutoff deleted first, in a transaction rolled back
after, so that it rebuilds that cutoff.

    python bench/compare_user_features.py                       # 4,000 users, 300 days
    python bench/compare_user_features.py --users 62500 --days 500 --seed 42 --time-repeat 3
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import duckdb

from measure import BIN, REPO, Warehouse, generate

FEATURES = "features.user_features"
FAMILIES = (
    "int_user_categories_counted_at_cutoffs",
    "user_purchase_features",
    "user_engagement_features",
    "user_price_level_features",
    "user_breadth_features",
    "user_review_features",
    "user_profile_features",
    "user_features",
)
SORTED = f"select * exclude (built_from) from {FEATURES} order by user_id, cutoff_date"


def export_ref(ref: str, destination: Path) -> Path:
    """The files of ``ref`` (a commit, branch or tag) in ``destination``."""
    archive = destination.with_suffix(".tar")
    subprocess.run(["git", "archive", "--output", str(archive), ref], cwd=REPO, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    archive.unlink()
    return destination


def deliver(source: Path, raw: Path, *, new_days: int) -> tuple[Path, Path]:
    """``source``'s tables in ``raw``, events held back: the first delivery (every event
    but those of the last ``new_days`` days) written, the second's path returned with it."""
    raw.mkdir(parents=True)
    for table in source.iterdir():
        if table.suffix == ".parquet" and table.stem != "events":
            shutil.copy2(table, raw / table.name)
    (raw / "events").mkdir()
    events = source / "events.parquet"
    early = f"event_time < (select max(event_time)::date from '{events}') - interval {new_days} day"
    first, second = raw / "events" / "part-0.parquet", raw / "events" / "part-1.parquet"
    with duckdb.connect() as connection:
        connection.execute(f"copy (select * from '{events}' where {early}) to '{first}'")
        connection.execute(
            f"copy (select * from '{events}' where not coalesce({early}, false)) to '{second}'"
        )
    held = raw.parent / f"{raw.name}-part-1.parquet"
    second.rename(held)
    return held, second


class Side:
    """One version of the models, run from its own project folder."""

    def __init__(self, name: str, root: Path, work: Path) -> None:
        self.name, self.root, self.work = name, root, work

    def warehouse(self, build: str) -> Warehouse:
        return Warehouse(self.work / f"{self.name}-{build}")

    def dbt(self, warehouse: Warehouse, *args: str, raw: Path) -> dict[str, float]:
        """``dbt <args>`` from this side's folder into ``warehouse``: each feature model's
        seconds."""
        command = [
            str(BIN / "dbt"), *args,
            "--vars", f'{{"raw_path": "{raw}", "artifacts_path": "{warehouse.artifacts}"}}',
            "--target-path", str(warehouse.target),
            "--log-path", str(warehouse.work / "logs"),
            "--no-use-colors",
        ]  # fmt: skip
        env = {**warehouse.env(), "DBT_PROFILES_DIR": str(self.root)}
        result = subprocess.run(
            command, cwd=self.root, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{self.name}: dbt {' '.join(args)} failed:\n{result.stdout}")
        seconds = warehouse.model_seconds()
        return {model: seconds[model] for model in FAMILIES if model in seconds}


def compare(left: Path, right: Path) -> dict[str, object]:
    """Row counts, ``except all`` both ways and md5 of the sorted rows of two warehouses'
    ``user_features``, ``built_from`` left out."""
    with duckdb.connect() as connection:
        connection.execute(f"attach '{left}' as left_side (read_only)")
        connection.execute(f"attach '{right}' as right_side (read_only)")
        rows = [
            connection.execute(f"select count(*) from {side}.{FEATURES}").fetchone()[0]
            for side in ("left_side", "right_side")
        ]
        differ = [
            connection.execute(
                f"select count(*) from (select * exclude (built_from) from {a}.{FEATURES}"
                f" except all select * exclude (built_from) from {b}.{FEATURES})"
            ).fetchone()[0]
            for a, b in (("left_side", "right_side"), ("right_side", "left_side"))
        ]
        columns = [
            connection.execute(
                f"select list(column_name order by ordinal_position) from"
                f" information_schema.columns where table_catalog = '{side}'"
                " and table_schema = 'features' and table_name = 'user_features'"
            ).fetchone()[0]
            for side in ("left_side", "right_side")
        ]
    digests = []
    for warehouse in (left, right):
        csv = warehouse.with_suffix(".csv")
        with duckdb.connect(str(warehouse), read_only=True) as connection:
            connection.execute(f"copy ({SORTED}) to '{csv}' (header)")
        digests.append(hashlib.md5(csv.read_bytes()).hexdigest())
    return {
        "rows": rows,
        "only_left": differ[0],
        "only_right": differ[1],
        "same_columns": columns[0] == columns[1],
        "md5": digests,
        "equal": rows[0] == rows[1] and differ == [0, 0] and len(set(digests)) == 1,
    }


def time_models(sides: tuple[Side, ...], repeat: int) -> dict[tuple[str, str, str], float]:
    """Best of ``repeat`` seconds of each feature model's compiled SQL, by (build, side,
    model), on a copy of the side's warehouse attached under the name the SQL uses."""
    best: dict[tuple[str, str, str], float] = {}
    for build in ("full", "incremental"):
        for _ in range(repeat):
            for side in sides:
                warehouse = side.warehouse(build)
                copy = warehouse.work / "timed.duckdb"
                shutil.copy2(warehouse.path, copy)
                compiled = warehouse.target / "compiled" / "purchasing_power" / "models"
                with duckdb.connect() as connection:
                    connection.execute(f"attach '{copy}' as warehouse")
                    connection.execute("use warehouse")
                    connection.execute(f"set threads = {warehouse.threads}")
                    connection.execute(f"set memory_limit = '{warehouse.memory_limit}'")
                    for model in FAMILIES:
                        layer = "intermediate" if model.startswith("int_") else "features"
                        path = compiled / layer / f"{model}.sql"
                        if not path.exists():
                            continue
                        connection.execute("begin")
                        if build == "incremental":
                            connection.execute(
                                f"delete from {layer}.{model} where cutoff_date ="
                                f" (select max(cutoff_date) from {layer}.{model})"
                            )
                        start = time.perf_counter()
                        connection.execute(f"create temp table rebuilt as {path.read_text()}")
                        seconds = time.perf_counter() - start
                        connection.execute("rollback")
                        key = (build, side.name, model)
                        best[key] = min(best.get(key, float("inf")), seconds)
                copy.unlink()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main", help="git ref whose models are compared")
    parser.add_argument("--users", type=int, default=4_000)
    parser.add_argument("--days", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--new-days", type=int, default=7, help="days the rerun adds")
    parser.add_argument("--work-dir", type=Path, default=None, help="kept when given")
    parser.add_argument("--time-repeat", type=int, default=0, help="time each model's SQL")
    args = parser.parse_args()

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="compare-user-features-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / "source"
    if not (source / "events.parquet").exists():
        generate(source, users=args.users, days=args.days, seed=args.seed,
                 log=work / "generate.log")  # fmt: skip
    raw = work / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    held, second = deliver(source, raw, new_days=args.new_days)
    base_root = work / "base"
    shutil.rmtree(base_root, ignore_errors=True)
    sides = (Side("base", export_ref(args.base, base_root), work), Side("tree", REPO, work))

    seconds: dict[str, dict[str, dict[str, float]]] = {}
    for side in sides:
        for build in ("incremental", "full"):
            shutil.rmtree(side.warehouse(build).work, ignore_errors=True)
            side.dbt(side.warehouse(build), "seed", raw=raw)
        side.dbt(side.warehouse("incremental"), "run", "--select", "+user_features", raw=raw)
    shutil.copy2(held, second)
    for side in sides:
        rerun = side.dbt(
            side.warehouse("incremental"), "run", "--select", "+user_features", raw=raw
        )
        full = side.dbt(side.warehouse("full"), "run", "--select", "+user_features", raw=raw)
        seconds[side.name] = {"full": full, "rerun": rerun}

    print(f"{args.users:,} users x {args.days} days, the rerun adding {args.new_days} days;")
    print(f"base {args.base} ({base_root}) against the working tree ({REPO}); work {work}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("\n| model | base full s | tree full s | base rerun s | tree rerun s |")
    print("|---|---:|---:|---:|---:|")
    for model in FAMILIES:
        cells = [seconds[side][build].get(model, float("nan"))
                 for build in ("full", "rerun") for side in ("base", "tree")]  # fmt: skip
        print(f"| `{model}` | " + " | ".join(f"{cell:.2f}" for cell in cells) + " |")

    failed = False
    for build in ("full", "incremental"):
        result = compare(*(side.warehouse(build).path for side in sides))
        failed |= not result["equal"]
        print(
            f"\n{build}: {'EQUAL' if result['equal'] else 'DIFFERENT'}: rows {result['rows']},"
            f" only in base {result['only_left']}, only in tree {result['only_right']},"
            f" same columns in order {result['same_columns']}, md5 {result['md5']}"
        )
    if args.time_repeat:
        best = time_models(sides, args.time_repeat)
        print(
            f"\nEach model's SQL in DuckDB, best of {args.time_repeat} (load average"
            f" {os.getloadavg()[0]:.2f}); rerun: its latest cutoff rebuilt\n"
        )
        print("| model | base full s | tree full s | base rerun s | tree rerun s |")
        print("|---|---:|---:|---:|---:|")
        for model in FAMILIES:
            cells = [best.get((build, side, model), float("nan"))
                     for build in ("full", "incremental") for side in ("base", "tree")]  # fmt: skip
            print(f"| `{model}` | " + " | ".join(f"{cell:.2f}" for cell in cells) + " |")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
