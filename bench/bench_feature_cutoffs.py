"""Issue 3.7: the feature build's cost grows with users x active days, not events x cutoffs.

A plain script (not a test). On about 10 million events (``--users 62500 --days 500``)
it times ``dbt run --select +user_features`` (staging, validation, the user-day base,
the windows and every feature family) into fresh warehouses with 4 and with 12 training
cutoffs (``training_cutoffs``, spaced ``--spacing`` days so that all 12 fit), alternating
the two in the same run, and reports both wall times, the ratio (target below 1.5x) and
the same for the models that depend on the cutoffs at all (everything downstream of
``int_cutoffs_derived``), from dbt's own per-model timings.

    python bench/bench_feature_cutoffs.py                     # ~10M events, ~5 minutes
    python bench/bench_feature_cutoffs.py --users 6250        # ~1M events, a quick look

Seeds are loaded before the clock starts. Writes
``bench/results/<date>-feature-cutoffs.json`` and ``.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from measure import REPO, Warehouse, count_rows, generate, machine, write_result

RESULTS = REPO / "bench" / "results"
CUTOFF_COUNTS = (4, 12)
TARGET_RATIO = 1.5


@dataclass(frozen=True)
class Run:
    training_cutoffs: int
    wall_seconds: float
    peak_rss_gib: float
    load_average: float
    cutoff_model_seconds: float  # models downstream of int_cutoffs_derived
    all_model_seconds: float
    user_feature_rows: int
    model_seconds: dict[str, float]


def _downstream(manifest: Path, model: str) -> set[str]:
    """Names of the models that depend, directly or not, on ``model``."""
    nodes = json.loads(manifest.read_text())["child_map"]
    start = next(node for node in nodes if node.startswith("model.") and node.endswith(model))
    found, pending = set(), [start]
    while pending:
        for child in nodes.get(pending.pop(), []):
            if child.startswith("model.") and child not in found:
                found.add(child)
                pending.append(child)
    return {node.split(".")[-1] for node in found} | {model}


def build_features(raw: Path, work: Path, *, cutoffs: int, spacing: int, threads: int) -> Run:
    if work.exists():
        shutil.rmtree(work)
    warehouse = Warehouse(work, threads=threads)
    vars = {"raw_path": str(raw), "training_cutoffs": cutoffs, "cutoff_spacing_days": spacing}
    warehouse.dbt("seed", vars=vars, log=work / "seed.log")
    measured = warehouse.dbt("run", "--select", "+user_features", vars=vars, log=work / "run.log")
    seconds = warehouse.model_seconds()
    depends = _downstream(warehouse.target / "manifest.json", "int_cutoffs_derived")
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        rows, training = connection.execute(
            "select count(*), count(distinct cutoff_date) filter (where is_training_cutoff)"
            " from features.user_features"
        ).fetchone()
    if training != cutoffs:
        raise RuntimeError(f"asked for {cutoffs} training cutoffs, the build made {training}")
    return Run(
        training_cutoffs=cutoffs,
        wall_seconds=measured.wall_seconds,
        peak_rss_gib=measured.peak_rss_gib,
        load_average=measured.load_average,
        cutoff_model_seconds=sum(s for name, s in seconds.items() if name in depends),
        all_model_seconds=sum(seconds.values()),
        user_feature_rows=int(rows),
        model_seconds=seconds,
    )


def _shared_base_ratio(few: Run, many: Run) -> float:
    """12 vs 4 cutoffs over the model times, with the cutoff-independent models' time
    averaged over both builds: the work they do is the same, so their difference is
    noise from other load on the machine, which this ratio leaves out."""
    few_shared = few.all_model_seconds - few.cutoff_model_seconds
    many_shared = many.all_model_seconds - many.cutoff_model_seconds
    shared = (few_shared + many_shared) / 2
    return (shared + many.cutoff_model_seconds) / (shared + few.cutoff_model_seconds)


def render(result: dict) -> str:
    runs = {run["training_cutoffs"]: run for run in result["runs"]}
    few, many = runs[CUTOFF_COUNTS[0]], runs[CUTOFF_COUNTS[1]]
    lines = [
        f"Feature build (`dbt run --select +user_features`), {result['events']:,} events, "
        f"{result['users']:,} users x {result['days']} days, {result['threads']} DuckDB threads, "
        f"{result['date']}",
        "",
        "| training cutoffs | wall s | peak RSS GiB | all models s | cutoff-dependent models s "
        "| user_features rows | load |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in (few, many):
        lines.append(
            f"| {run['training_cutoffs']} | {run['wall_seconds']:.1f} | {run['peak_rss_gib']:.2f} "
            f"| {run['all_model_seconds']:.1f} | {run['cutoff_model_seconds']:.1f} "
            f"| {run['user_feature_rows']:,} | {run['load_average']:.1f} |"
        )
    lines += [
        "",
        f"12 vs 4 cutoffs: wall {result['ratio_wall']:.2f}x, "
        f"cutoff-dependent models {result['ratio_cutoff_models']:.2f}x, "
        f"all models with the cutoff-independent ones averaged over both builds "
        f"{result['ratio_models_shared_base']:.2f}x "
        f"(target < {TARGET_RATIO}x on wall: {'met' if result['meets_target'] else 'NOT met'})",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=62_500)
    parser.add_argument("--days", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--spacing", type=int, default=30, help="days between cutoffs")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    parser.add_argument("--repeat", type=int, default=1, help="builds per cutoff count")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "purchasing-power-bench" / "feature-cutoffs",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    raw = args.work_dir / f"raw-{args.users}x{args.days}-seed{args.seed}"
    if not (raw / "events.parquet").exists():
        print(f"generating {args.users:,} users x {args.days} days into {raw}", flush=True)
        generate(raw, users=args.users, days=args.days, seed=args.seed,
                 log=args.work_dir / "generate.log")  # fmt: skip
    events = count_rows(raw / "events.parquet")

    best: dict[int, Run] = {}
    for attempt in range(args.repeat):
        for cutoffs in CUTOFF_COUNTS:
            run = build_features(raw, args.work_dir / f"build-{cutoffs}", cutoffs=cutoffs,
                                 spacing=args.spacing, threads=args.threads)  # fmt: skip
            print(
                f"  run {attempt + 1}, {cutoffs:>2} cutoffs: {run.wall_seconds:.1f} s wall, "
                f"{run.cutoff_model_seconds:.1f} s in cutoff-dependent models",
                flush=True,
            )
            if cutoffs not in best or run.wall_seconds < best[cutoffs].wall_seconds:
                best[cutoffs] = run
    few, many = best[CUTOFF_COUNTS[0]], best[CUTOFF_COUNTS[1]]
    today = dt.date.today().isoformat()
    result = {
        "benchmark": "feature_cutoffs",
        "date": today,
        "events": events,
        "users": args.users,
        "days": args.days,
        "spacing_days": args.spacing,
        "threads": args.threads,
        "repeat": args.repeat,
        "machine": machine(),
        "runs": [asdict(few), asdict(many)],
        "ratio_wall": many.wall_seconds / few.wall_seconds,
        "ratio_cutoff_models": many.cutoff_model_seconds / few.cutoff_model_seconds,
        "ratio_models_shared_base": _shared_base_ratio(few, many),
        "meets_target": many.wall_seconds / few.wall_seconds < TARGET_RATIO,
    }
    table = render(result)
    print(table)
    write_result(args.out, f"{today}-feature-cutoffs", result, table)


if __name__ == "__main__":
    main()
