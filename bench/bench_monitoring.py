"""What monitoring adds to a daily rerun (issue 37, point 7: at most 5%).

A plain script (not a test; benchmarks never gate CI). It generates a shop at one of
``bench/run.py``'s scales, holds its last day back (``run.hold_back_last_day``), and
builds it twice as a shop in production would have been: at ``as_of`` one horizon
before the end (so that this as_of's horizon passes on the measured day and monitoring
labels it, as a daily rerun's monitoring does once a day), then on every day but the
last (the default ``as_of``). The last day's events then arrive, and the same rerun
(default ``as_of``, the accepted model scores) is timed from that one saved state,
alternately:

* without monitoring: ``--exclude path:models/monitoring`` and its two seeds (their
  tests go with them); the publication still copies the monitoring tables the saved
  state holds, so their copy is counted on both sides;
* with it: the whole build.

Both are a plain ``dbt build``, unit tests included, as users run it and as
``bench/run.py``'s one-new-day rerun is. The figure is the median wall time of the runs
with monitoring over the median of those without, each a whole ``dbt build`` process
(starting Python and parsing included); beside it the same ratio of the CPU time the dbt
process used (user and system, DuckDB's threads included), which a machine others load
moves far less than the wall, dbt's own elapsed time and the monitoring nodes' execution
times. ``--reuse`` reruns from the state a previous run in the same ``--work-dir``
saved, without generating and building again.
Both runs must choose the same model, train none and publish the same scores, and the
run with monitoring must have labeled the first as_of, else the script fails.

    python bench/bench_monitoring.py --scale small             # ~1.2M events
    python bench/bench_monitoring.py --scale medium --memory-limit 5GB   # ~12.6M events

Writes ``bench/results/<date>-monitoring-<scale>.json`` and ``.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import duckdb

from measure import BIN, REPO, Warehouse, count_rows, machine, write_result
from run import DAYS, USERS, generate_in_parts, hold_back_last_day

RESULTS = REPO / "bench" / "results"
TARGET = 1.05  # issue 37: monitoring adds at most 5% to a daily rerun
MONITORING = ("path:models/monitoring", "monitoring_thresholds", "retrain_policy")
BUILD = ("build",)
# dbt's own folders are not saved state: a restored state keeps them, so that each rerun
# parses the project partially, as a scheduled rerun with the same vars does
KEPT = ("logs", "target")


def _save(state: Path, saved: Path) -> None:
    shutil.copytree(state, saved, ignore=lambda folder, names: KEPT if folder == str(state) else ())


def _restore(saved: Path, state: Path) -> None:
    for path in state.iterdir():
        if path.name not in KEPT:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.copytree(saved, state, dirs_exist_ok=True)


def _cpu_seconds() -> float:
    """User and system CPU time of the children this process has waited for."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _monitoring_nodes(warehouse: Warehouse, vars: dict) -> set[str]:
    log = warehouse.work / "logs" / "ls-monitoring.log"
    warehouse.dbt(
        "ls", "-q", "--output", "json", "--output-keys", "unique_id", "--select", *MONITORING,
        vars=vars, log=log,
    )  # fmt: skip
    return {
        json.loads(line)["unique_id"] for line in log.read_text().splitlines() if line[:1] == "{"
    }


def _state(warehouse: Warehouse, first_as_of: dt.date) -> dict[str, object]:
    """What a rerun decided and published: the active model, the registered models,
    a digest of the scores, and whether the first as_of's horizon was labeled."""
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        models = connection.execute(
            "select count(*), any_value(model_version) filter (where is_active) from ml.ml_models"
        ).fetchone()
        scores = connection.execute(
            "select count(*), sum(hash(user_id, as_of, model_version, predicted_spend,"
            " purchase_probability, power_index, tier)) from marts.purchasing_power_scores"
        ).fetchone()
        labeled = connection.execute(
            "select count(*) from monitoring.monitoring_performance"
            f" where is_horizon_complete and as_of = date '{first_as_of}'"
        ).fetchone()[0]
    return {
        "registered_models": int(models[0]),
        "active_model": models[1],
        "scores": [int(scores[0]), str(scores[1])],
        "first_as_of_labeled": bool(labeled),
    }


def _set_up(
    args: argparse.Namespace, *, users: int, name: str, work: Path, warehouse: Warehouse, vars: dict
) -> dict[str, object]:
    """Generate the shop, build it at the first as_of and on the day before the measured
    one, add the last day's events and save the state the reruns start from."""
    raw, held = work / "raw", work / "held" / "last-day.parquet"
    if args.keep_raw and held.exists():
        # the shop an earlier run generated, its last day held back, before it built
        print(f"{name}: the shop in {raw}, its last day in {held}", flush=True)
        for path in work.iterdir():
            if path not in (raw, held.parent):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        (raw / "events" / "part-1.parquet").unlink(missing_ok=True)
        with duckdb.connect() as connection:
            day, rows = connection.execute(
                f"select max(event_time)::date, count(*) from '{held}'"
            ).fetchone()
        new_day = {"new_day": day.isoformat(), "new_day_events": int(rows)}
    else:
        if work.exists():
            shutil.rmtree(work)
        print(f"{name}: {users:,} users x {args.days} days into {work}", flush=True)
        generate_in_parts(raw, users=users, days=args.days, seed=args.seed, log=work / "gen.log")
        held.parent.mkdir(parents=True)
        new_day = hold_back_last_day(raw, held)
    events = count_rows(raw / "events" / "part-0.parquet") + new_day["new_day_events"]
    measured_as_of = dt.date.fromisoformat(new_day["new_day"]) + dt.timedelta(days=1)
    first_as_of = measured_as_of - dt.timedelta(days=args.horizon_days)
    print(f"  build at as_of {first_as_of} (one horizon before the measured day) ...", flush=True)
    first = warehouse.dbt(
        *BUILD, vars={**vars, "as_of": first_as_of.isoformat()}, log=work / "logs" / "first.log"
    )
    print(f"    {first.wall_seconds:.1f} s; build on every day but the last ...", flush=True)
    before = warehouse.dbt(*BUILD, vars=vars, log=work / "logs" / "day-before.log")
    print(f"    {before.wall_seconds:.1f} s", flush=True)
    shutil.copy(held, raw / "events" / "part-1.parquet")
    _save(warehouse.work, work / "saved")
    setup = {
        "events": events,
        "new_day_events": new_day["new_day_events"],
        "first_as_of": first_as_of.isoformat(),
        "measured_as_of": measured_as_of.isoformat(),
        "first_build_seconds": first.wall_seconds,
        "day_before_seconds": before.wall_seconds,
    }
    (work / "setup.json").write_text(json.dumps(setup, indent=2) + "\n")
    return setup


def run(args: argparse.Namespace) -> dict[str, object]:
    users = args.users or USERS[args.scale]
    name = args.scale if not args.users else f"{users}-users"
    work: Path = args.work_dir / f"monitoring-{name}"
    state, saved = work / "state", work / "saved"
    warehouse = Warehouse(state, threads=args.threads, memory_limit=args.memory_limit)
    vars = {"raw_path": str(work / "raw"), "horizon_days": args.horizon_days}
    if args.reuse:
        setup = json.loads((work / "setup.json").read_text())
        _restore(saved, state)
    else:
        setup = _set_up(args, users=users, name=name, work=work, warehouse=warehouse, vars=vars)
    first_as_of = dt.date.fromisoformat(setup["first_as_of"])
    nodes = _monitoring_nodes(warehouse, vars)
    registered = _state(warehouse, first_as_of)["registered_models"]

    runs: dict[str, list[dict[str, object]]] = {"without": [], "with": []}
    for repeat in range(args.repeat):
        for kind in ("without", "with") if repeat % 2 == 0 else ("with", "without"):
            _restore(saved, state)
            excluded = ("--exclude", *MONITORING) if kind == "without" else ()
            log = work / "logs" / f"rerun-{kind}-{repeat}.log"
            cpu = _cpu_seconds()
            measured = warehouse.dbt(*BUILD, *excluded, vars=vars, log=log)
            cpu = _cpu_seconds() - cpu
            spans = warehouse.node_spans()
            monitoring = {node: spans[node][2] for node in nodes if node in spans}
            runs[kind].append(
                {
                    "wall_seconds": measured.wall_seconds,
                    "cpu_seconds": cpu,
                    "dbt_elapsed_seconds": warehouse.elapsed_seconds(),
                    "nodes": len(spans),
                    "monitoring_nodes": len(monitoring),
                    "monitoring_node_seconds": sum(monitoring.values()),
                    "slowest_monitoring_nodes": dict(
                        sorted(monitoring.items(), key=lambda item: -item[1])[:5]
                    ),
                    "load_average": measured.load_average,
                    "state": _state(warehouse, first_as_of),
                }
            )
            print(
                f"  rerun {kind:<7} {measured.wall_seconds:6.1f} s, CPU {cpu:6.1f} s "
                f"({len(spans)} nodes, "
                f"load {measured.load_average:.2f})",
                flush=True,
            )
    without, with_ = runs["without"], runs["with"]
    decisions = {json.dumps({**r["state"], "first_as_of_labeled": None}) for r in without + with_}
    trained = [r for r in without + with_ if r["state"]["registered_models"] != registered]
    if len(decisions) != 1 or trained:
        raise RuntimeError(f"the reruns did not choose and publish alike: {sorted(decisions)}")
    if not all(r["state"]["first_as_of_labeled"] for r in with_):
        raise RuntimeError(f"the reruns with monitoring did not label as_of {first_as_of}")

    def median(rows: list[dict], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    ratio = median(with_, "wall_seconds") / median(without, "wall_seconds")
    return {
        "benchmark": "monitoring",
        "scale": name,
        "date": dt.date.today().isoformat(),
        "users": users,
        "days": args.days,
        "horizon_days": args.horizon_days,
        **setup,
        "reused_state": args.reuse,
        "threads": args.threads,
        "memory_limit": args.memory_limit,
        "machine": machine(),
        "monitoring_nodes_listed": len(nodes),
        "runs": runs,
        "median_wall_without": median(without, "wall_seconds"),
        "median_wall_with": median(with_, "wall_seconds"),
        "ratio_wall": ratio,
        "median_cpu_without": median(without, "cpu_seconds"),
        "median_cpu_with": median(with_, "cpu_seconds"),
        "ratio_cpu": median(with_, "cpu_seconds") / median(without, "cpu_seconds"),
        "ratio_dbt_elapsed": median(with_, "dbt_elapsed_seconds")
        / median(without, "dbt_elapsed_seconds"),
        "median_monitoring_node_seconds": median(with_, "monitoring_node_seconds"),
        "meets_target": ratio <= TARGET,
    }


def render(result: dict) -> str:
    without, with_ = result["runs"]["without"], result["runs"]["with"]
    lines = [
        f"# Monitoring's cost on a daily rerun: {result['scale']}, {result['date']}",
        "",
        f"{result['users']:,} users, {result['events']:,} events over {result['days']} days; "
        f"the rerun adds the last day ({result['new_day_events']:,} events) at as_of "
        f"{result['measured_as_of']} and labels the scores of {result['first_as_of']} "
        f"(horizon {result['horizon_days']} days). {len(without)} runs each, alternated, "
        f"from one saved state; {result['machine']['cpus']} CPUs, DuckDB "
        f"{result['threads']} threads, memory limit {result['memory_limit']}.",
        "",
        "| rerun | wall (median) | CPU (median) | dbt elapsed (median) | nodes | load averages |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for kind, rows in (("without monitoring", without), ("with monitoring", with_)):
        lines.append(
            f"| {kind} | {statistics.median(r['wall_seconds'] for r in rows):.1f} s "
            f"| {statistics.median(r['cpu_seconds'] for r in rows):.1f} s "
            f"| {statistics.median(r['dbt_elapsed_seconds'] for r in rows):.1f} s "
            f"| {rows[0]['nodes']} | " + ", ".join(f"{r['load_average']:.2f}" for r in rows) + " |"
        )
    slowest = with_[0]["slowest_monitoring_nodes"]
    lines += [
        "",
        f"**With / without: {result['ratio_wall']:.3f} of the wall** (target at most "
        f"{TARGET:.2f}: {'met' if result['meets_target'] else 'not met'}); "
        f"{result['ratio_cpu']:.3f} of the CPU time, {result['ratio_dbt_elapsed']:.3f} of "
        f"dbt's elapsed time. Monitoring's "
        f"{with_[0]['monitoring_nodes']} nodes executed in "
        f"{result['median_monitoring_node_seconds']:.2f} s (median); the slowest: "
        + ", ".join(f"{node.split('.')[-1]} {seconds:.2f} s" for node, seconds in slowest.items())
        + ".",
        "",
        "Walls (CPU), in run order: without "
        + ", ".join(f"{r['wall_seconds']:.1f} ({r['cpu_seconds']:.1f})" for r in without)
        + "; with "
        + ", ".join(f"{r['wall_seconds']:.1f} ({r['cpu_seconds']:.1f})" for r in with_)
        + " s."
        + (
            " Reruns from a state saved by an earlier run (--reuse)."
            if result["reused_state"]
            else ""
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(USERS), default="small")
    parser.add_argument("--users", type=int, default=0, help="instead of the scale's users")
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    parser.add_argument("--memory-limit", default="8GB", help="DuckDB memory limit")
    parser.add_argument("--repeat", type=int, default=3, help="timed reruns of each kind")
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "purchasing-power-bench"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--reuse", action="store_true", help="rerun from the state a run in --work-dir saved"
    )
    parser.add_argument(
        "--keep-raw",
        action="store_true",
        help="build again the shop a run in --work-dir generated (not generating it anew)",
    )
    args = parser.parse_args()
    if not (BIN / "dbt").exists():
        sys.exit(f"no dbt next to {sys.executable}: run `make install` first")
    result = run(args)
    table = render(result)
    print(table)
    write_result(args.out, f"{result['date']}-monitoring-{result['scale']}", result, table)


if __name__ == "__main__":
    main()
