"""`make bench`: the whole pipeline at one scale, stage by stage (issue 6).

A plain script (not a test; benchmarks never gate CI). It generates a shop, then runs
the whole ``dbt build`` as one process into a warehouse of its own, as a user runs it,
measuring its wall time and the peak memory of its process tree (``bench/measure.py``).
The build is then cut into stages by the nodes each selects (``dbt ls``): a stage's wall
time is its nodes' execution times, its peak the largest memory sampled while one of
them ran, and its rows per second (a result without ``"build": "one dbt build process"``
ran each stage as a ``dbt build`` process of its own, and so missed the memory one stage
leaves to the next):

=====================  ==========================================================
generate               ``purchasing-power generate`` (above 62,500 users, in shops of
                       62,500 combined into one: ``generate_in_parts``)
staging_validation     seeds, staging views, ``int_events_validated``, quarantine
features               intermediate layer, feature families, ``user_features``,
                       ``feature_registry``, ``training_examples``
training_export        ``ml_models``: train, export to ONNX, parity gate, register
scoring                ``ml_scores``, ``purchasing_power_scores``
explaining             ``ml_reasons``, ``purchasing_power_reasons`` (when present)
marts_publishing       everything else (evaluations, importance, publishing, ...)
=====================  ==========================================================

and, in the same run, the ratios of issue 6 that can be measured now:

* feature SQL vs reference: the dbt models on the path from the raw Parquet to
  ``user_purchase_features`` (their own execution times, from ``run_results.json``)
  against one hand-written DuckDB query computing the same RFM features straight from
  Parquet (``bench/reference_rfm.py``, in a process of its own); target below 2x. The
  share of (user, cutoff) rows where the two agree is reported as a sanity check.
* ONNX vs LightGBM: for each booster of the model the build registered, rows per second
  of its ``ai.onnx.ml`` TreeEnsemble graph through onnxruntime (``scoring.make_session``
  and ``scoring.predict``, what ``ml_scores`` runs) against ``lightgbm.Booster.predict``
  on the same rows (the scoring rows, repeated up to ``--scoring-rows``) and the same
  threads; target at least 2x, at exact parity. lleaves (``make bench`` installs it in an
  environment of its own, ``.venv-lleaves``) is the compiled comparison.
* one new day: the stages build every day but the last; the last day is then added as a
  second file and ``dbt build`` reruns on the built warehouse (the user-day base is
  incremental, the accepted model scores). Its wall time against the full build's
  (target below 10%), and the same data built from scratch with ``--full-refresh`` (same
  registry, so the same model) to check the rerun's features, scores and reasons equal it.

    python bench/run.py --scale small     # ~1M events, a few minutes
    python bench/run.py --scale medium    # ~10M events
    python bench/run.py --scale large --memory-limit 5GB  # ~100M events, ~70 min
    python bench/run.py --scale large --skip-incremental  # without the new day, ~45 min
    python bench/run.py --scale large --shop /tmp/large   # the shop an earlier run generated

Writes ``bench/results/<date>-<scale>.json`` and ``.md`` (``-2``, ``-3``... for a later run
the same day) and prints the table.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import lightgbm as lgb
import numpy as np

from measure import (
    BIN,
    REPO,
    Measured,
    Sample,
    Warehouse,
    best_time,
    count_rows,
    generate,
    machine,
    measure,
    write_result,
)
from purchasing_power.export import booster_to_onnx
from purchasing_power.features import FeatureSchema
from purchasing_power.registry import RegisteredModel, load_heads
from purchasing_power.scoring import SCORING_OUTPUTS, make_session, predict, predict_outputs
from purchasing_power.train import HURDLE

RESULTS = REPO / "bench" / "results"
USERS = {"small": 6_250, "medium": 62_500, "large": 625_000}  # x 500 days: ~1M, 10M, 100M
DAYS = 500
# The generator holds a whole shop in memory (4.4 GiB at medium): a larger scale is
# generated as shops of at most this many users, their ids kept apart, then combined.
PART_USERS = 62_500
FEATURE_TARGET = 2.0  # feature SQL within 2x of the reference query
SCORING_TARGET = 2.0  # ONNX at least 2x lightgbm.predict
INCREMENTAL_TARGET = 0.1  # one new day rebuilt in under 10% of the full build
# how the full build ran: results before it ran one dbt process per stage
ONE_PROCESS = "one dbt build process"


@dataclass(frozen=True)
class Stage:
    """A dbt stage: what it selects (less what earlier stages built: a ``+`` only pulls
    in ancestors no earlier stage has), and what its rows per second count."""

    name: str
    select: tuple[str, ...]  # empty: everything not selected by an earlier stage
    rows_of: str  # "raw_events", "training_rows", "scored_users" or ""


STAGES = (
    Stage("staging_validation",
          ("+data_quality_summary", "+rejected_events", "path:models/staging"), "raw_events"),
    Stage("features", ("+training_examples", "+feature_registry"), "raw_events"),
    Stage("training_export", ("+ml_models",), "training_rows"),
    Stage("scoring", ("+ml_scores", "+purchasing_power_scores"), "scored_users"),
    Stage("explaining", ("+ml_reasons", "+purchasing_power_reasons"), "scored_users"),
    Stage("marts_publishing", (), ""),
)  # fmt: skip


@dataclass(frozen=True)
class StageResult:
    name: str
    wall_seconds: float
    peak_rss_gib: float
    rows: int
    rows_per_second: float
    load_average: float
    model_seconds: dict[str, float] = field(default_factory=dict)


def _stage_result(name: str, measured: Measured, rows: int, models: dict) -> StageResult:
    return StageResult(
        name=name,
        wall_seconds=measured.wall_seconds,
        peak_rss_gib=measured.peak_rss_gib,
        rows=rows,
        rows_per_second=rows / measured.wall_seconds if rows else 0.0,
        load_average=measured.load_average,
        model_seconds=models,
    )


def stage_nodes(warehouse: Warehouse, vars: dict) -> dict[str, set[str]]:
    """The ``unique_id`` of every node (seed, model, data and unit test) each stage
    selects, less what earlier stages selected: a test in the stage that builds the last
    of its parents, as ``dbt build --indirect-selection buildable`` would run it."""
    nodes: dict[str, set[str]] = {}
    earlier: list[str] = []
    for stage in STAGES:
        args = ["ls", "--indirect-selection", "buildable", "-q"]
        args += ["--output", "json", "--output-keys", "unique_id"]
        args += ["--select", *stage.select] if stage.select else []
        args += ["--exclude", *earlier] if earlier else []
        log = warehouse.work / "logs" / f"ls-{stage.name}.log"
        warehouse.dbt(*args, vars=vars, log=log)
        listed = {
            json.loads(line)["unique_id"]
            for line in log.read_text().splitlines()
            if line.startswith("{")
        }
        nodes[stage.name] = listed.difference(*nodes.values())
        earlier += list(stage.select)
    return nodes


def _nearest_sample(samples: Sequence[Sample], start: float, end: float) -> Sample:
    """The sample nearest in time to the span from ``start`` to ``end``."""
    after = bisect.bisect_left([sample.at for sample in samples], start)
    return min(
        samples[max(after - 1, 0) : after + 1],
        key=lambda sample: max(start - sample.at, sample.at - end, 0.0),
    )


def split_by_stage(
    build: Measured,
    spans: dict[str, tuple[float, float, float]],
    nodes: dict[str, set[str]],
    rows: dict[str, int],
) -> dict[str, StageResult]:
    """The stages of one ``dbt build`` process: each one's wall time is its nodes'
    execution times (``Warehouse.node_spans``), its peak the largest memory of the
    process tree sampled while one of its nodes ran, its load the machine's at the last
    such sample. A stage whose nodes all ran between two samples takes the sample nearest
    in time to each of them instead. A stage none of whose nodes ran is left out."""
    ordered = sorted((start, end, node) for node, (start, end, _) in spans.items())
    starts = [start for start, _, _ in ordered]
    stage_of = {node: name for name, members in nodes.items() for node in members}
    peaks: dict[str, int] = {}
    loads: dict[str, float] = {}
    for sample in build.samples:
        at = bisect.bisect_right(starts, sample.at) - 1
        if at < 0 or sample.at > ordered[at][1] or ordered[at][2] not in stage_of:
            continue  # between nodes: dbt starting, parsing, or closing
        name = stage_of[ordered[at][2]]
        peaks[name] = max(peaks.get(name, 0), sample.tree_rss_bytes)
        loads[name] = sample.load_average
    stages = {}
    for stage in STAGES:
        ran = [node for node in nodes.get(stage.name, ()) if node in spans]
        if not ran:
            continue
        if stage.name not in peaks and build.samples:
            nearest = [_nearest_sample(build.samples, *spans[node][:2]) for node in ran]
            peaks[stage.name] = max(sample.tree_rss_bytes for sample in nearest)
            loads[stage.name] = max(nearest, key=lambda sample: sample.at).load_average
        wall = sum(spans[node][2] for node in ran)
        count = rows.get(stage.rows_of, 0)
        stages[stage.name] = StageResult(
            name=stage.name,
            wall_seconds=wall,
            peak_rss_gib=peaks.get(stage.name, 0) / 2**30,
            rows=count,
            rows_per_second=count / wall if count and wall else 0.0,
            load_average=loads.get(stage.name, build.load_average),
            model_seconds={
                node.split(".")[-1]: spans[node][2] for node in ran if node.startswith("model.")
            },
        )
    return stages


def _counts(warehouse: Warehouse) -> dict[str, int]:
    queries = {
        "training_rows": "select count(*) from ml.training_examples",
        "scored_users": "select count(*) from marts.purchasing_power_scores",
    }
    counts = {}
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        for name, sql in queries.items():
            try:
                counts[name] = int(connection.execute(sql).fetchone()[0])
            except duckdb.Error:
                counts[name] = 0
    return counts


# ---------------------------------------------------------------------------------------
# Feature SQL vs the hand-written reference
# ---------------------------------------------------------------------------------------


def _ancestors(manifest: Path, model: str) -> set[str]:
    parents = json.loads(manifest.read_text())["parent_map"]
    start = next(node for node in parents if node.startswith("model.") and node.endswith(model))
    found, pending = {start}, [start]
    while pending:
        for parent in parents.get(pending.pop(), []):
            if parent.startswith("model.") and parent not in found:
                found.add(parent)
                pending.append(parent)
    return {node.split(".")[-1] for node in found}


def compare_features(
    warehouse: Warehouse, raw: Path, stages: dict[str, StageResult], *, threads: int, work: Path
) -> dict[str, object]:
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        cutoffs = [
            row[0]
            for row in connection.execute(
                "select cutoff_date from intermediate.int_cutoffs_derived order by 1"
            ).fetchall()
        ]
        (as_of,) = connection.execute(
            "select max(as_of_date) from intermediate.int_cutoffs_derived"
        ).fetchone()
    out = work / "reference_rfm.parquet"
    command = [
        sys.executable, str(REPO / "bench" / "reference_rfm.py"),
        "--events", str(raw / "events" / "*.parquet"), "--as-of", as_of.isoformat(),
        "--cutoffs", ",".join(day.isoformat() for day in cutoffs), "--out", str(out),
        "--threads", str(threads), "--memory-limit", warehouse.memory_limit,
    ]  # fmt: skip
    reference = measure(command, log=work / "logs" / "reference_rfm.log")
    path = _ancestors(warehouse.target / "manifest.json", "user_purchase_features")
    models = {**stages["staging_validation"].model_seconds, **stages["features"].model_seconds}
    rfm_seconds = sum(seconds for name, seconds in models.items() if name in path)
    feature_wall = stages["staging_validation"].wall_seconds + stages["features"].wall_seconds
    ours = {
        "reference_seconds": reference.wall_seconds,
        "reference_peak_rss_gib": reference.peak_rss_gib,
        "dbt_rfm_path_model_seconds": rfm_seconds,
        "dbt_rfm_path_models": sorted(path),
        "dbt_feature_stages_wall_seconds": feature_wall,
    }
    if reference.returncode != 0:
        # The comparison is lost, not the run: e.g. the single query cannot finish within
        # a memory limit the dbt build completed under.
        lines = reference.log.read_text().strip().splitlines()
        error = next((line for line in reversed(lines) if "Error" in line), lines[-1])
        print(f"  reference query failed: {error}", flush=True)
        return {**ours, "reference_failed": error, "meets_target": None}
    return {
        **ours,
        "ratio_rfm_path": rfm_seconds / reference.wall_seconds,
        "ratio_feature_stages_wall": feature_wall / reference.wall_seconds,
        "meets_target": rfm_seconds / reference.wall_seconds < FEATURE_TARGET,
        "cutoffs": len(cutoffs),
        **_agreement(warehouse.path, out),
    }


def _agreement(warehouse: Path, reference: Path) -> dict[str, object]:
    """How many (user, cutoff) rows of the reference equal dbt's, column by column."""
    with duckdb.connect() as connection:
        connection.execute(f"attach '{warehouse}' as dbt (read_only)")
        ours = {row[0] for row in connection.execute(
            "describe dbt.features.user_purchase_features").fetchall()}  # fmt: skip
        theirs = [row[0] for row in connection.execute(
            f"describe select * from '{reference}'").fetchall()]  # fmt: skip
        columns = [c for c in theirs if c in ours and c not in ("user_id", "cutoff_date")]
        same = " and ".join(
            f"(d.{c} is not distinct from r.{c} or abs(d.{c} - r.{c})"
            f" <= 1e-6 * greatest(abs(d.{c}), abs(r.{c}), 1))"
            for c in columns
        )
        dbt_rows, reference_rows, matched, equal = connection.execute(
            f"""
            select
                (select count(*) from dbt.features.user_purchase_features),
                (select count(*) from '{reference}'),
                count(*),
                count(*) filter (where {same})
            from dbt.features.user_purchase_features as d
            inner join '{reference}' as r using (user_id, cutoff_date)
            """
        ).fetchone()
    return {
        "agreement_columns": columns,
        "dbt_rows": dbt_rows,
        "reference_rows": reference_rows,
        "matched_rows": matched,
        "share_rows_equal": equal / matched if matched else 0.0,
    }


# ---------------------------------------------------------------------------------------
# ONNX TreeEnsemble vs lightgbm.predict
# ---------------------------------------------------------------------------------------


def _scoring_rows(warehouse: Warehouse, card: dict, rows: int) -> np.ndarray:
    """The scoring rows as the registered model reads them (its card's features, derived
    ones computed as scoring computes them), repeated up to ``rows``."""
    schema = FeatureSchema.from_card(card["features"], card.get("btyd_features"))
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        table = connection.sql(
            "select * from features.user_features where is_scoring_cutoff order by user_id"
        ).to_arrow_table()
    matrix = schema.to_matrix(table)
    repeats = -(-rows // len(matrix))
    return np.ascontiguousarray(np.tile(matrix, (repeats, 1))[:rows])


def _lleaves(
    model_file: Path, features: np.ndarray, threads: int, repeat: int, work: Path, python: Path
) -> tuple[float, np.ndarray] | str:
    """(best seconds, predictions) of lleaves, the LLVM-compiled scorer, or why not. It
    runs in its own environment (``bench/lleaves_score.py``)."""
    if not python.exists():
        return f"not installed ({python})"
    rows = work / "lleaves-rows.npy"
    out = work / f"{model_file.stem}.lleaves.npy"
    np.save(rows, features)
    script = Path(__file__).with_name("lleaves_score.py")
    command = [str(python), str(script), str(model_file), str(rows), str(threads), str(repeat)]
    done = subprocess.run([*command, str(out)], capture_output=True, text=True, check=False)
    rows.unlink()
    if done.returncode != 0:  # a comparison only: report it, keep the run
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
        return f"failed: {lines[-1]}"
    return float(json.loads(done.stdout.splitlines()[-1])["seconds"]), np.load(out)


def compare_scoring(
    warehouse: Warehouse, *, rows: int, threads: int, repeat: int, work: Path, lleaves: Path
) -> dict[str, object]:
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        (artifact,) = connection.execute(
            "select artifact_path from ml.ml_models where is_active"
        ).fetchone()
    card = json.loads((Path(artifact) / "card.json").read_text())
    if "lightgbm_files" not in card:  # a baseline scored in Python: no trees, no graph
        return {"model_version": Path(artifact).name, "rows": rows, "threads": threads,
                "boosters": [], "ratio_all_boosters": 0.0, "scoring_graph": None,
                "meets_target": False, "lleaves": f"no trees: {card['method']} scored"}  # fmt: skip
    features = _scoring_rows(warehouse, card, rows)
    boosters = sorted(Path(artifact).glob("*.lgb.txt"))
    results = []
    for model_file in boosters:
        booster = lgb.Booster(model_file=str(model_file))
        lightgbm_seconds, expected = best_time(
            lambda b=booster, x=features: b.predict(x, num_threads=threads), repeat
        )
        session = make_session(
            booster_to_onnx(booster, graph="tree_ensemble").SerializeToString(),
            num_threads=threads,
        )
        onnx_seconds, actual = best_time(lambda s=session, x=features: predict(s, x), repeat)
        scale = np.maximum(np.abs(expected), np.finfo(np.float64).tiny)
        compiled = _lleaves(model_file, features, threads, repeat, work, lleaves)
        lleaves_seconds, lleaves_note = (
            (compiled[0], None) if isinstance(compiled, tuple) else (None, compiled)
        )
        results.append(
            {
                "booster": model_file.name,
                "trees": booster.num_trees(),
                "features": booster.num_feature(),
                "lightgbm_rows_per_second": rows / lightgbm_seconds,
                "onnx_rows_per_second": rows / onnx_seconds,
                "ratio_onnx_to_lightgbm": lightgbm_seconds / onnx_seconds,
                "lleaves_rows_per_second": rows / lleaves_seconds if lleaves_seconds else None,
                "lleaves_max_rel_diff": (
                    float(np.max(np.abs(compiled[1] - expected) / scale))
                    if lleaves_seconds
                    else None
                ),
                "lleaves_note": lleaves_note,
                "max_abs_diff": float(np.max(np.abs(actual - expected))),
                "max_rel_diff": float(np.max(np.abs(actual - expected) / scale)),
            }
        )
    total_lightgbm = sum(rows / r["lightgbm_rows_per_second"] for r in results)
    total_onnx = sum(rows / r["onnx_rows_per_second"] for r in results)
    notes = sorted({r["lleaves_note"] for r in results if r["lleaves_note"]})
    graph = _scoring_graph(
        Path(artifact), rows=rows, threads=threads, repeat=repeat, warehouse=warehouse
    )
    return {
        "model_version": Path(artifact).name,
        "rows": rows,
        "threads": threads,
        "boosters": results,
        "ratio_all_boosters": total_lightgbm / total_onnx if total_onnx else 0.0,
        "scoring_graph": graph,
        "meets_target": graph["ratio_onnx_to_lightgbm"] >= SCORING_TARGET,
        "lleaves": "; ".join(notes) or "compared",
    }


def _scoring_graph(
    artifact: Path, *, rows: int, threads: int, repeat: int, warehouse: Warehouse
) -> dict[str, object]:
    """What ``ml_scores`` runs, the model's spend graph (both heads, expected spend and
    purchase probability in one run), against ``lightgbm.predict`` of both heads."""
    card = json.loads((artifact / "card.json").read_text())
    heads = load_heads(RegisteredModel(card["model_version"], artifact, card))
    purchase, conditional = heads.purchase, heads.spend_given_purchase
    features = _scoring_rows(warehouse, card, rows)

    def lightgbm() -> tuple[np.ndarray, np.ndarray]:
        probability = purchase.predict(features, num_threads=threads)
        spend = conditional.predict(features, num_threads=threads)
        return (probability * spend if heads.combination == HURDLE else spend), probability

    lightgbm_seconds, (spend, probability) = best_time(lightgbm, repeat)
    session = make_session(artifact / card["files"]["spend"], num_threads=threads)
    onnx_seconds, (onnx_spend, onnx_probability) = best_time(
        lambda: predict_outputs(session, features, SCORING_OUTPUTS), repeat
    )
    scale = np.maximum(np.abs(spend), np.finfo(np.float64).tiny)
    return {
        "graph": card["files"]["spend"],
        "trees": purchase.num_trees() + conditional.num_trees(),
        "lightgbm_rows_per_second": rows / lightgbm_seconds,
        "onnx_rows_per_second": rows / onnx_seconds,
        "ratio_onnx_to_lightgbm": lightgbm_seconds / onnx_seconds,
        "spend_max_rel_diff": float(np.max(np.abs(onnx_spend - spend) / scale)),
        "probability_max_abs_diff": float(np.max(np.abs(onnx_probability - probability))),
    }


# ---------------------------------------------------------------------------------------
# One new day: an incremental rerun against a full rebuild
# ---------------------------------------------------------------------------------------

# The tables compared between the incremental rerun and the full rebuild (scored_at,
# built_from and the like differ by construction and are left out).
COMPARED = {
    "features.user_features": "* exclude (built_from)",
    "marts.purchasing_power_scores": "* exclude (scored_at)",
    "marts.purchasing_power_reasons": "*",
}


def generate_in_parts(raw: Path, *, users: int, days: int, seed: int, log: Path) -> Measured:
    """``purchasing-power generate``, in shops of at most ``PART_USERS`` users (seeds
    ``seed``, ``seed + 1``...) whose ids get the part's prefix, combined into one shop in
    ``raw``: the same kind of data at a scale the generator could not hold in memory. A
    scale that fits is one call, as before. Wall times add up; the peak is the largest."""
    if users <= PART_USERS:
        return generate(raw, users=users, days=days, seed=seed, log=log)
    parts = raw.parent / "parts"
    measured, prefixes = [], []
    for part, start in enumerate(range(0, users, PART_USERS)):
        size = min(PART_USERS, users - start)
        print(f"    part {part}: {size:,} users", flush=True)
        prefixes.append(f"p{part}")
        measured.append(
            generate(
                parts / prefixes[-1],
                users=size,
                days=days,
                seed=seed + part,
                log=log.with_name(f"generate-p{part}.log"),
            )
        )
    ids = {
        "events": ("event_id", "user_id", "item_id", "order_id", "session_id"),
        "users": ("user_id",),
        "items": ("item_id",),
        "ground_truth": ("user_id",),
    }

    def prefixed(prefix: str, columns: tuple[str, ...]) -> str:
        return ", ".join(f"{prefix!r} || {column} as {column}" for column in columns)

    selects = {
        table: " union all ".join(
            f"select * replace ({prefixed(prefix, columns)})"
            f" from '{parts / prefix / table}.parquet'"
            for prefix in prefixes
        )
        for table, columns in ids.items()
    }
    script = "; ".join(
        ["set preserve_insertion_order = false", "set memory_limit = '4GB'"]
        + [f"copy ({select}) to '{raw / table}.parquet'" for table, select in selects.items()]
    )
    raw.mkdir(parents=True)
    measured.append(
        measure(
            [
                sys.executable,
                "-c",
                "import duckdb, sys; duckdb.connect().execute(sys.argv[1])",
                script,
            ],
            log=log.with_name("generate-combine.log"),
        )
    )
    if measured[-1].returncode != 0:
        raise RuntimeError(f"combining the parts failed: {measured[-1].log.read_text()[-2000:]}")
    shutil.rmtree(parts)
    return Measured(
        command=("generate_in_parts", str(users)),
        wall_seconds=sum(m.wall_seconds for m in measured),
        peak_rss_bytes=max(m.peak_rss_bytes for m in measured),
        returncode=0,
        log=log,
        load_average=measured[-1].load_average,
    )


def hold_back_last_day(raw: Path, held: Path) -> dict[str, object]:
    """Turn ``raw/events.parquet`` into a folder whose one file has every event but the
    last day's; the last day's events go to ``held`` (rows without a readable time stay
    in the folder: the build quarantines them wherever they are)."""
    source = raw / "events.parquet"
    folder = raw / "events"
    folder.mkdir()
    with duckdb.connect() as connection:
        (last_day,) = connection.execute(f"select max(event_time)::date from '{source}'").fetchone()
        new = f"event_time >= '{last_day}'::date"
        connection.execute(
            f"copy (select * from '{source}' where not coalesce({new}, false))"
            f" to '{folder / 'part-0.parquet'}'"
        )
        connection.execute(
            f"copy (select * from '{source}' where coalesce({new}, false)) to '{held}'"
        )
        (held_rows,) = connection.execute(f"select count(*) from '{held}'").fetchone()
    source.unlink()
    return {"new_day": last_day.isoformat(), "new_day_events": int(held_rows)}


def copy_shop(shop: Path, raw: Path, held: Path) -> dict[str, object]:
    """The shop an earlier run (``--work-dir``) generated, copied as it was before its
    build: its raw files, every event but the last day's, and the held-back last day."""
    if not (shop / "raw" / "events" / "part-0.parquet").exists():
        sys.exit(f"no generated shop in {shop}: raw/events/part-0.parquet is missing")
    shutil.copytree(
        shop / "raw", raw, ignore=lambda folder, names: {"part-1.parquet"} & set(names)
    )  # the held-back day, which the earlier run's rerun added
    held.parent.mkdir(parents=True)
    shutil.copy(shop / "held" / held.name, held)
    with duckdb.connect() as connection:
        (day, rows), *_ = connection.sql(
            f"select max(event_time)::date, count(*) from '{held}'"
        ).fetchall()
    return {"new_day": day.isoformat(), "new_day_events": int(rows)}


def _differences(left: Path, right: Path) -> dict[str, int]:
    """Rows of each compared table in one warehouse and not the other, both ways."""
    found = {}
    with duckdb.connect() as connection:
        connection.execute(f"attach '{left}' as lhs (read_only)")
        connection.execute(f"attach '{right}' as rhs (read_only)")
        for table, columns in COMPARED.items():
            (rows,) = connection.execute(
                f"select count(*) from ((select {columns} from lhs.{table} except all"
                f" select {columns} from rhs.{table}) union all (select {columns} from"
                f" rhs.{table} except all select {columns} from lhs.{table}))"
            ).fetchone()
            found[table] = int(rows)
    return found


def compare_incremental(
    warehouse: Warehouse,
    raw: Path,
    held: Path,
    *,
    full_build_seconds: float,
    args: argparse.Namespace,
    work: Path,
) -> dict[str, object]:
    """Add the held-back day, rerun ``dbt build`` on the built warehouse (the user-day base
    is incremental; the accepted model scores, no training), then build the same data from
    scratch (``--full-refresh``, same registry, so the same model) and compare."""
    shutil.copy(held, raw / "events" / "part-1.parquet")
    vars = {"raw_path": str(raw)}
    rerun = warehouse.dbt("build", vars=vars, log=work / "logs" / "incremental.log")
    rebuilt = Warehouse(work / "dbt_full", threads=args.threads, memory_limit=args.memory_limit)
    full = rebuilt.dbt(
        "build", "--full-refresh",
        vars={**vars, "artifacts_path": str(warehouse.artifacts)},
        log=work / "logs" / "full_rebuild.log",
    )  # fmt: skip
    differences = _differences(warehouse.path, rebuilt.path)
    return {
        "incremental_seconds": rerun.wall_seconds,
        "incremental_peak_rss_gib": rerun.peak_rss_gib,
        "incremental_model_seconds": warehouse.model_seconds(),
        "incremental_test_seconds": warehouse.node_seconds("test", "unit_test"),
        "incremental_dbt_elapsed_seconds": warehouse.elapsed_seconds(),
        "full_rebuild_no_training_seconds": full.wall_seconds,
        "full_build_seconds": full_build_seconds,
        "ratio_to_full_build": rerun.wall_seconds / full_build_seconds,
        "ratio_to_full_rebuild_no_training": rerun.wall_seconds / full.wall_seconds,
        "meets_target": rerun.wall_seconds / full_build_seconds < INCREMENTAL_TARGET,
        "rows_differing_from_full_rebuild": differences,
        "equal_to_full_rebuild": not any(differences.values()),
    }


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------


def run_pipeline(args: argparse.Namespace) -> dict[str, object]:
    work: Path = args.work_dir / args.scale
    if args.shop and args.shop.resolve() == work.resolve():
        sys.exit(f"--shop {args.shop} is the folder this run empties: move it first")
    if work.exists():
        shutil.rmtree(work)
    raw = work / "raw"
    users = USERS[args.scale]
    print(f"{args.scale}: {users:,} users x {DAYS} days into {work}", flush=True)
    # the last day is held back for the incremental rerun: the stages build the others
    held = work / "held" / "events-last-day.parquet"
    stages: dict[str, StageResult] = {}
    if args.shop:
        new_day = copy_shop(args.shop, raw, held)
        events = count_rows(raw / "events" / "part-0.parquet")
        print(f"  the shop of {args.shop}: {events:,} events", flush=True)
    else:
        log = work / "logs" / "generate.log"
        generated = generate_in_parts(raw, users=users, days=DAYS, seed=args.seed, log=log)
        held.parent.mkdir(parents=True)
        new_day = hold_back_last_day(raw, held)
        events = count_rows(raw / "events" / "part-0.parquet")
        stages["generate"] = _stage_result("generate", generated, events, {})
        print(f"  generate            {generated.wall_seconds:8.1f} s  {events:,} events",
              flush=True)  # fmt: skip

    warehouse = Warehouse(work / "dbt", threads=args.threads, memory_limit=args.memory_limit)
    vars = {"raw_path": str(raw)}
    nodes = stage_nodes(warehouse, vars)
    # the whole build as a user runs it: one dbt process, cut into stages afterwards
    build = warehouse.dbt("build", vars=vars, log=work / "logs" / "build.log")
    counts = {"raw_events": events, **_counts(warehouse)}
    stages.update(split_by_stage(build, warehouse.node_spans(), nodes, counts))
    for name, stage in stages.items():
        if name != "generate":
            print(f"  {name:<19} {stage.wall_seconds:8.1f} s  peak "
                  f"{stage.peak_rss_gib:.2f} GiB", flush=True)  # fmt: skip
    outside = build.wall_seconds - sum(s.wall_seconds for n, s in stages.items() if n != "generate")
    print(f"  dbt build           {build.wall_seconds:8.1f} s  peak {build.peak_rss_gib:.2f} "
          f"GiB (outside the nodes {outside:.1f} s)", flush=True)  # fmt: skip

    print("  reference RFM query and scoring engines ...", flush=True)
    features = compare_features(warehouse, raw, stages, threads=args.threads, work=work)
    scoring = compare_scoring(
        warehouse,
        rows=args.scoring_rows,
        threads=args.threads,
        repeat=args.repeat,
        work=work,
        lleaves=args.lleaves_python,
    )
    incremental = None
    if not args.skip_incremental:
        print(f"  one new day ({new_day['new_day_events']:,} events): rerun and rebuild ...")
        try:
            compared = compare_incremental(
                warehouse,
                raw,
                held,
                full_build_seconds=build.wall_seconds,
                args=args,
                work=work,
            )
        except RuntimeError as error:
            # a failed rerun is a finding of the run, not a reason to lose its other figures
            print(f"  one new day failed: {str(error).splitlines()[0]}", flush=True)
            compared = {"failed": str(error)}
        incremental = {**new_day, **compared}
    return {
        "benchmark": "pipeline",
        "scale": args.scale,
        "date": dt.date.today().isoformat(),
        "users": users,
        "days": DAYS,
        "events": events,
        "threads": args.threads,
        "memory_limit": args.memory_limit,
        "machine": machine(),
        "build": ONE_PROCESS,
        "stages": [asdict(stage) for stage in stages.values()],
        "total_dbt_seconds": build.wall_seconds,
        "dbt_outside_nodes_seconds": outside,
        "dbt_load_average": build.load_average,
        "peak_rss_gib": build.peak_rss_gib,  # the build's own (generate has its stage row)
        "feature_sql_vs_reference": features,
        "onnx_vs_lightgbm": scoring,
        "incremental_new_day": incremental,
    }


def render(result: dict) -> str:
    lines = [
        f"`bench/run.py --scale {result['scale']}`: {result['events']:,} events, "
        f"{result['users']:,} users x {result['days']} days, {result['threads']} DuckDB threads, "
        f"memory limit {result['memory_limit']}, {result['date']}, "
        f"{result['machine']['cpus']} CPUs / {result['machine']['memory_gib']} GiB",
        "",
        "| stage | wall s | peak RSS GiB | rows | rows/s | load |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for stage in result["stages"]:
        rate = f"{stage['rows_per_second']:,.0f}" if stage["rows"] else ""
        rows = f"{stage['rows']:,}" if stage["rows"] else ""
        lines.append(
            f"| {stage['name']} | {stage['wall_seconds']:.1f} | {stage['peak_rss_gib']:.2f} "
            f"| {rows} | {rate} | {stage['load_average']:.1f} |"
        )
    if result.get("build") == ONE_PROCESS:
        lines += [
            f"| dbt outside the nodes (starting, parsing, between nodes) "
            f"| {result['dbt_outside_nodes_seconds']:.1f} | | | | |",
            f"| **dbt build, one process** | **{result['total_dbt_seconds']:.1f}** | "
            f"**{result['peak_rss_gib']:.2f}** | | | {result['dbt_load_average']:.1f} |",
            "",
            "The full build is one `dbt build` process. A stage's wall time is its nodes' "
            "execution times (`run_results.json`), its peak the largest memory of the process "
            "tree sampled while one of them ran; the build's peak also counts the kernel's "
            "high-water mark of each process.",
        ]
    else:
        lines.append(
            f"| **dbt total** | **{result['total_dbt_seconds']:.1f}** | "
            f"**{result['peak_rss_gib']:.2f}** | | | |"
        )
    features = result["feature_sql_vs_reference"]
    scoring = result["onnx_vs_lightgbm"]
    lines += ["", "| ratio | measured | target |", "|---|---:|---|"]
    if "reference_failed" in features:
        lines.append(
            f"| feature SQL (dbt models on the path to user_purchase_features, "
            f"{features['dbt_rfm_path_model_seconds']:.1f} s) / reference query | the "
            f"reference failed after {features['reference_seconds']:.1f} s: "
            f"{features['reference_failed']} | < {FEATURE_TARGET}x: not measured |"
        )
    else:
        lines += [
            f"| feature SQL (dbt models on the path to user_purchase_features, "
            f"{features['dbt_rfm_path_model_seconds']:.1f} s) / reference query "
            f"({features['reference_seconds']:.1f} s) | {features['ratio_rfm_path']:.2f}x "
            f"| < {FEATURE_TARGET}x: {'met' if features['meets_target'] else 'NOT met'} |",
            f"| staging + features stages, "
            f"{'their nodes' if result.get('build') == ONE_PROCESS else 'wall'} "
            f"({features['dbt_feature_stages_wall_seconds']:.1f} s) / reference query "
            f"| {features['ratio_feature_stages_wall']:.2f}x | |",
        ]
    for booster in scoring["boosters"]:
        lleaves = booster["lleaves_rows_per_second"]
        lines.append(
            f"| {booster['booster']} ({booster['trees']} trees): ONNX "
            f"{booster['onnx_rows_per_second']:,.0f} rows/s / lightgbm.predict "
            f"{booster['lightgbm_rows_per_second']:,.0f} rows/s"
            + (
                f" (lleaves {lleaves:,.0f} rows/s,"
                f" {lleaves / booster['lightgbm_rows_per_second']:.2f}x lightgbm.predict,"
                f" max rel diff {booster['lleaves_max_rel_diff']:.1e})"
                if lleaves
                else ""
            )
            + f", max rel diff {booster['max_rel_diff']:.1e}"
            f" | {booster['ratio_onnx_to_lightgbm']:.2f}x | |"
        )
    graph = scoring.get("scoring_graph")  # results written before it have none
    target = f">= {SCORING_TARGET}x: {'met' if scoring['meets_target'] else 'NOT met'}"
    lines.append(
        f"| all boosters, {scoring['rows']:,} rows, {scoring['threads']} threads "
        f"| {scoring['ratio_all_boosters']:.2f}x | {'' if graph else target} |"
    )
    if graph:
        lines.append(
            f"| what scoring runs: {graph['graph']} ({graph['trees']} trees, both outputs in "
            f"one run) {graph['onnx_rows_per_second']:,.0f} rows/s / lightgbm.predict of both "
            f"heads {graph['lightgbm_rows_per_second']:,.0f} rows/s, max rel diff (spend) "
            f"{graph['spend_max_rel_diff']:.1e}, max abs diff (probability) "
            f"{graph['probability_max_abs_diff']:.1e} "
            f"| {graph['ratio_onnx_to_lightgbm']:.2f}x | {target} |"
        )
    lines += [
        "",
        (
            f"Reference and dbt agree on {features['share_rows_equal']:.2%} of "
            f"{features['matched_rows']:,} (user, cutoff) rows "
            f"({features['dbt_rows']:,} in dbt, {features['reference_rows']:,} in the "
            "reference); "
            if "reference_failed" not in features
            else ""
        )
        + f"lleaves: {scoring['lleaves']}. Load: the machine's 1-minute load average at the end "
        + ("of each stage's last node" if result.get("build") == ONE_PROCESS else "of each stage")
        + f" ({result['machine']['cpus']} CPUs; other work on the machine counts).",
    ]
    new_day = result.get("incremental_new_day")
    if not new_day:
        lines += ["", "One new day: not run (`--skip-incremental`)."]
    elif "failed" in new_day:
        lines += [
            "",
            f"One new day ({new_day['new_day']}, {new_day['new_day_events']:,} events): FAILED",
            "",
            "```",
            *new_day["failed"].splitlines()[-15:],
            "```",
        ]
    else:
        equal = new_day["equal_to_full_rebuild"]
        rebuild = new_day["full_rebuild_no_training_seconds"]
        lines += [
            "",
            f"One new day ({new_day['new_day']}, {new_day['new_day_events']:,} events) added to "
            "the built warehouse:",
            "",
            "| run | wall s | ratio to the full build |",
            "|---|---:|---:|",
            f"| full build ({'the process' if result.get('build') == ONE_PROCESS else 'stages'}"
            f" above) | {new_day['full_build_seconds']:.1f} | 1.00 |",
            f"| incremental `dbt build` (accepted model, no training) "
            f"| {new_day['incremental_seconds']:.1f} | {new_day['ratio_to_full_build']:.3f} "
            f"(< {INCREMENTAL_TARGET}: {'met' if new_day['meets_target'] else 'NOT met'}) |",
            f"| full rebuild of the same data (`--full-refresh`, same model) "
            f"| {rebuild:.1f} "
            f"| {rebuild / new_day['full_build_seconds']:.3f} |",
            "",
            "Incremental vs full rebuild: "
            + (
                "equal"
                if equal
                else "DIFFERENT: "
                + ", ".join(
                    f"{table} {rows:,} rows"
                    for table, rows in new_day["rows_differing_from_full_rebuild"].items()
                )
            )
            + f" ({', '.join(COMPARED)}). Slowest models of the rerun: "
            + ", ".join(
                f"{name} {seconds:.1f} s"
                for name, seconds in sorted(
                    new_day["incremental_model_seconds"].items(), key=lambda item: -item[1]
                )[:5]
            )
            + ".",
        ]
        if "incremental_test_seconds" in new_day:
            lines += ["", _rerun_made_of(new_day)]
    return "\n".join(lines) + "\n"


def _rerun_made_of(new_day: dict) -> str:
    """The rerun's wall time cut into models, tests and the rest, from dbt's own times."""
    models = sum(new_day["incremental_model_seconds"].values())
    tests = new_day["incremental_test_seconds"]
    tests_total = sum(tests.values())
    elapsed = new_day["incremental_dbt_elapsed_seconds"]
    wall = new_day["incremental_seconds"]
    slowest = sorted(tests.items(), key=lambda item: -item[1])[:5]
    return (
        f"The rerun's {wall:.1f} s: models {models:.1f} s, data and unit tests "
        f"{tests_total:.1f} s ({len(tests)}; slowest "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in slowest)
        + f"), the rest of dbt's elapsed time {elapsed - models - tests_total:.1f} s, "
        f"and {wall - elapsed:.1f} s outside it (starting Python, parsing, closing)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(USERS), default="small")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB and scoring threads")
    parser.add_argument("--memory-limit", default="8GB", help="DuckDB memory limit")
    parser.add_argument("--scoring-rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed scoring runs (best)")
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "purchasing-power-bench"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--shop",
        type=Path,
        help="a scale's work folder of an earlier run (such as /tmp/purchasing-power-bench/"
        "large): copy the shop it generated instead of generating one",
    )
    parser.add_argument(
        "--lleaves-python",
        type=Path,
        default=REPO / ".venv-lleaves" / "bin" / "python",
        help="the interpreter of lleaves' environment (make bench installs it)",
    )
    parser.add_argument(
        "--skip-incremental",
        action="store_true",
        help="leave out the one-new-day rerun and its full rebuild (two more builds)",
    )
    args = parser.parse_args()
    if not (BIN / "dbt").exists():
        sys.exit(f"no dbt next to {sys.executable}: run `make install` first")
    result = run_pipeline(args)
    table = render(result)
    print(table)
    write_result(args.out, f"{result['date']}-{args.scale}", result, table)


if __name__ == "__main__":
    main()
