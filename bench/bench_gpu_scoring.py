"""Rows per second of the scoring path on a GPU host: tensor graph on CUDA vs TreeEnsemble on CPU.

A plain script (not a test). It trains (or loads, ``--model-file``) a tweedie LightGBM
model, 300 trees x 63 leaves on 40 features by default, exports both graph kinds with
``purchasing_power.export`` and scores through ``purchasing_power.scoring`` (``make_session``
and ``predict``, the functions ``ml_scores`` uses, batch padding included):

* TreeEnsemble graph, CPU execution provider, with every core and with 2 threads;
* TreeEnsemble graph in a CUDA session (ai.onnx.ml has no CUDA kernel: CPU fallback);
* tensor graph, CUDA execution provider, host-to-device copy of the features and the
  copy of the scores back included, for each ``--variants`` entry, call size and
  ``--cuda-pieces`` x ``--cuda-in-flight`` (how ``predict`` cuts a call into runs);
* the best tensor variant with features already on the GPU (io_binding), to separate
  kernel time from transfers.

It also checks the CUDA scores against LightGBM and the TreeEnsemble graph, that a
row's CUDA score does not depend on the size of the batch it came in, and that the
registration gate (``parity.prove_parity``) runs the tensor graph on CUDA on every row
(``--gate-only`` runs that check alone).

    python bench/bench_gpu_scoring.py --rows 1000000,10000000 --json-out results.json

``--variants``: ``current`` is the export in this tree, ``cost:<n>`` the same with another
level cost for its depth groups; ``baseline`` loads an older ``export.py`` given by
``--baseline-export`` (e.g. ``git show 07a5eeb:python/purchasing_power/export.py``).
Rates are the best of ``--repeat`` timed runs after one warm-up.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.csv as pa_csv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_export import make_data, make_target, node_providers
from purchasing_power import export, scoring
from purchasing_power.features import FeatureSchema, FeatureSpec
from purchasing_power.model_graphs import export_graphs
from purchasing_power.parity import edge_case_rows, prove_parity
from purchasing_power.registry import GRAPH_SUFFIX
from purchasing_power.scoring import (
    Session,
    load_scoring_model,
    make_session,
    predict,
    score_batches,
)
from purchasing_power.tiers import Tier
from purchasing_power.train import Heads

REPO = Path(__file__).resolve().parents[1]


def best_rate(fn: Callable[[], object], rows: int, repeat: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return rows / best


def predict_chunked(session: Session, x: np.ndarray, chunk: int) -> np.ndarray:
    out = np.empty(len(x))
    for begin in range(0, len(x), chunk):
        out[begin : begin + chunk] = predict(session, x[begin : begin + chunk])
    return out


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float64).tiny)))


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("export_baseline", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def tensor_model(booster: lgb.Booster, variant: str, baseline: Path | None) -> bytes:
    if variant == "baseline":
        if baseline is None:
            raise SystemExit("--variants baseline needs --baseline-export")
        return load_module(baseline).booster_to_onnx(booster, graph="tensor").SerializeToString()
    # "current", or "cost:<n>": the current export with another depth-group level cost
    if variant != "current":
        export.tensor._LEVEL_COST_IN_TREES = int(variant.removeprefix("cost:"))
    return export.booster_to_onnx(booster, graph="tensor").SerializeToString()


def check_best(
    model: bytes, x: np.ndarray, cpu_scores: np.ndarray, label: str, chunk: int
) -> list[dict[str, object]]:
    """Parity on every row, batch-size invariance, kernel-only rate and node placement."""
    results: list[dict[str, object]] = []
    session = make_session(model, provider="cuda")
    full = predict_chunked(session, x, chunk)
    print(f"best {label}: on {len(x):,} rows max rel diff vs tree_ensemble CPU "
          f"{max_rel(full, cpu_scores):.2e}", flush=True)  # fmt: skip
    sample = x[: 3 << 20]
    whole = predict_chunked(session, sample, 3 << 20)
    for size in (7_777, 65_536, 1 << 20):
        same = np.array_equal(predict_chunked(session, sample, size), whole)
        print(f"batch-size invariance on CUDA, runs of {size:,} vs one run: {same}", flush=True)
        results.append({"check": f"cuda_batch_invariance_{size}", "equal": same})

    binding = session.inference.io_binding()
    resident = min(len(x), 1 << 20)
    on_gpu = ort.OrtValue.ortvalue_from_numpy(x[:resident], "cuda", 0)
    binding.bind_ortvalue_input("features", on_gpu)
    binding.bind_output("prediction", "cuda")
    binding.bind_output("raw_score", "cuda")

    def device_only() -> None:
        session.inference.run_with_iobinding(binding)
        binding.synchronize_outputs()

    rate = best_rate(device_only, resident, 3)
    print(f"tensor CUDA {label}, features already on the GPU: {rate:,.0f} rows/s", flush=True)
    results.append({"engine": "tensor CUDA, features on GPU", "rows": resident, "rows_per_s": rate})

    placement: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        profiled = ort.InferenceSession(
            model, options, providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
        )
        predict(Session(profiled, runs=1), x[:1000])
        for (op, provider), count in node_providers(profiled).items():
            placement.setdefault(provider, {})[op] = count
    print(f"tensor graph nodes by provider: {placement}", flush=True)
    results.append({"check": "node_placement", "placement": placement})
    return results


def check_scoring_path(
    purchase: lgb.Booster, spend: lgb.Booster, x: np.ndarray
) -> dict[str, object]:
    """ml_scores' path on this host: device auto must pick CUDA and the tensor graph of
    the hurdle (``spend`` as the conditional head), agree with the CPU TreeEnsemble
    scores and not depend on the batch size."""
    schema = FeatureSchema(tuple(FeatureSpec(f"f{i}", f"f{i}") for i in range(x.shape[1])))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        exported = export_graphs(Heads(purchase=purchase, spend_given_purchase=spend))
        for graph, files in exported.items():
            for head, content in files.items():
                (folder / f"{head}{GRAPH_SUFFIX[graph]}").write_bytes(content)
        reference = predict(make_session(folder / "spend.onnx", num_threads=16), x[:100_000])
        card = {
            "model_version": "pp-bench",
            "status": "accepted",
            "features": schema.to_card(),
            "reference_spend_quantiles": np.quantile(reference, np.linspace(0, 1, 101)).tolist(),
            "files": {"purchase": "purchase.onnx", "spend": "spend.onnx"},
        }
        (folder / "card.json").write_text(json.dumps(card))
        table = pa.table(
            {"user_id": [f"u{i}" for i in range(len(x))]}
            | {f"f{i}": x[:, i] for i in range(x.shape[1])}
        )
        gpu = load_scoring_model(folder, device="auto", num_threads=16)
        cpu = load_scoring_model(folder, device="cpu", num_threads=16)
        scored: dict[int, pa.Table] = {}
        rates: dict[int, float] = {}
        for batch_rows in (65_536, 1 << 20, 7_777):
            start = time.perf_counter()
            batches = score_batches(table.to_batches(max_chunksize=batch_rows), model=gpu)
            scored[batch_rows] = pa.Table.from_batches(list(batches))
            rates[batch_rows] = len(x) / (time.perf_counter() - start)
        on_cpu = pa.Table.from_batches(
            list(score_batches(table.to_batches(max_chunksize=1 << 20), model=cpu))
        )
    first = scored[65_536]
    spend_gpu, spend_cpu = first["predicted_spend"].to_numpy(), on_cpu["predicted_spend"].to_numpy()
    index_gpu, index_cpu = first["power_index"].to_numpy(), on_cpu["power_index"].to_numpy()
    check = {
        "check": "scoring_path",
        "graph": gpu.graph,
        "provider": gpu.execution_provider,
        "rows_per_s_by_batch_rows": rates,
        "same_whatever_the_batch_size": all(t.equals(first) for t in scored.values()),
        "spend_max_rel_diff_vs_cpu": max_rel(spend_gpu, spend_cpu),
        "probability_max_abs_diff_vs_cpu": float(
            np.max(
                np.abs(
                    first["purchase_probability"].to_numpy()
                    - on_cpu["purchase_probability"].to_numpy()
                )
            )
        ),
        "power_index_max_abs_diff_vs_cpu": float(np.max(np.abs(index_gpu - index_cpu))),
    }
    print(f"scoring path: {check}", flush=True)
    return check


def check_parity_gate(
    purchase: lgb.Booster, spend: lgb.Booster, x: np.ndarray, rows: int
) -> dict[str, object]:
    """The registration gate (``parity.prove_parity``) on this host: where CUDA runs it
    must gate the tensor graph there on every row, not on the CPU sample."""
    heads = Heads(purchase=purchase, spend_given_purchase=spend)
    exported = export_graphs(heads)
    tiers = Tier.from_table(pa_csv.read_csv(REPO / "seeds" / "power_tiers.csv"))
    edges = edge_case_rows(heads, x[:100])
    start = time.perf_counter()
    parity = prove_parity(
        heads, exported, rows=x[:rows], edge_cases=edges, validation_rows=rows // 2, tiers=tiers
    ).figures
    check = {
        "check": "parity_gate",
        "seconds": time.perf_counter() - start,
        "edge_case_rows": len(edges),
    } | {
        graph: {
            "execution_provider": parity[graph]["execution_provider"],
            "rows": parity[graph]["spend"]["rows"],
            "spend_max_rel_diff": parity[graph]["spend"]["max_rel_diff"],
            "purchase_max_abs_diff": parity[graph]["purchase"]["max_abs_diff"],
            "spend_graph_probability_max_abs_diff": parity[graph]["purchase_probability"][
                "max_abs_diff"
            ],
            "tier_changes": parity[graph]["tier_changes"],
        }
        for graph in parity
    }
    print(f"parity gate: {check}", flush=True)
    return check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--leaves", type=int, default=63)
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--model-file", type=Path, help="a LightGBM text model instead")
    parser.add_argument("--cpu-threads", default=f"{os.cpu_count()},2")
    parser.add_argument("--cpu-chunk", type=int, default=1 << 20)
    parser.add_argument("--cuda-chunks", default="65536,262144,1048576,4194304,16777216")
    parser.add_argument(
        "--cuda-pieces",
        default=str(scoring.CUDA_ROWS_PER_RUN),
        help="values of scoring.CUDA_ROWS_PER_RUN to time (rows per run)",
    )
    parser.add_argument(
        "--cuda-in-flight",
        default=str(scoring.CUDA_RUNS_IN_FLIGHT),
        help="values of scoring.CUDA_RUNS_IN_FLIGHT to time (runs at a time)",
    )
    parser.add_argument("--variants", default="current")
    parser.add_argument("--baseline-export", type=Path)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument(
        "--gate-rows", type=int, default=1_000_000, help="rows for the parity-gate check"
    )
    parser.add_argument("--gate-only", action="store_true", help="run the parity-gate check alone")
    args = parser.parse_args()
    row_counts = [int(r) for r in args.rows.split(",")]
    rng = np.random.default_rng(2024)

    start = time.perf_counter()
    purchase: lgb.Booster | None = None
    if args.model_file:
        booster = lgb.Booster(model_file=str(args.model_file))
    else:
        x_train = make_data(rng, args.train_rows, args.features)
        booster = lgb.train(
            {
                "objective": "tweedie",
                "num_leaves": args.leaves,
                "min_data_in_leaf": 20,
                "learning_rate": 0.05,
                "deterministic": True,
                "seed": 2024,
                "verbose": -1,
            },
            lgb.Dataset(x_train, make_target(rng, x_train)),
            num_boost_round=args.trees,
        )
        purchase = lgb.train(
            {"objective": "binary", "num_leaves": 31, "deterministic": True, "verbose": -1},
            lgb.Dataset(x_train, make_target(rng, x_train) > 0),
            num_boost_round=100,
        )
    x = make_data(rng, max(row_counts), booster.num_feature())
    depths = [tree.depth for tree in export.parse._parse_booster(booster).trees]
    print(
        f"model: {booster.num_trees()} trees, depth max {max(depths)} mean {np.mean(depths):.1f}, "
        f"{booster.num_feature()} features; data {x.shape} ready in "
        f"{time.perf_counter() - start:.0f}s; onnxruntime {ort.__version__}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    results: list[dict[str, object]] = []

    def record(engine: str, rows: int, rate: float, **extra: object) -> None:
        results.append({"engine": engine, "rows": rows, "rows_per_s": rate, **extra})
        details = " ".join(f"{k}={v}" for k, v in extra.items())
        print(f"{engine:44} {rows:>11,} {rate:>14,.0f} rows/s {details}", flush=True)

    if args.gate_only:
        if purchase is None:
            raise SystemExit("--gate-only needs the trained purchase head (no --model-file)")
        results.append(check_parity_gate(purchase, booster, x, args.gate_rows))
        if args.json_out:
            args.json_out.write_text(json.dumps({"results": results}, indent=1) + "\n")
        return

    parity_rows = min(row_counts)
    expected = booster.predict(x[:parity_rows], num_threads=os.cpu_count() or 2)
    tree_ensemble = export.booster_to_onnx(booster, graph="tree_ensemble").SerializeToString()
    cpu_scores = np.empty(0)
    for threads in [int(t) for t in args.cpu_threads.split(",")]:
        session = make_session(tree_ensemble, num_threads=threads)
        predict_chunked(session, x[:100_000], args.cpu_chunk)  # warm-up
        for rows in row_counts:
            # Single timed runs: a 10M-row run on 2 threads takes over a minute.
            start = time.perf_counter()
            scores = predict_chunked(session, x[:rows], args.cpu_chunk)
            record(
                f"tree_ensemble CPU {threads} threads", rows, rows / (time.perf_counter() - start)
            )
            if len(scores) > len(cpu_scores):
                cpu_scores = scores
        del session

    if not ort.get_available_providers().count("CUDAExecutionProvider"):
        raise SystemExit("no CUDAExecutionProvider in this onnxruntime")
    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    session = make_session(tree_ensemble, provider="cuda")
    rate = best_rate(
        lambda s=session: predict_chunked(s, x[:parity_rows], args.cpu_chunk), parity_rows, 1
    )
    record("tree_ensemble in a CUDA session", parity_rows, rate, provider=session.provider)
    del session

    best: tuple[float, str, int] = (0.0, "", 0)
    best_at: dict[int, float] = {}
    defaults = scoring.CUDA_ROWS_PER_RUN, scoring.CUDA_RUNS_IN_FLIGHT
    for variant in args.variants.split(","):
        start = time.perf_counter()
        model = tensor_model(booster, variant, args.baseline_export)
        session = make_session(model, provider="cuda")
        built = time.perf_counter() - start
        if session.provider != "CUDAExecutionProvider":
            raise SystemExit(f"CUDA provider not active: {session.inference.get_providers()}")
        scores = predict_chunked(session, x[:parity_rows], 1 << 20)
        print(
            f"tensor {variant}: {len(model) / 1e6:.1f} MB graph, export+session {built:.1f}s, "
            f"max rel diff vs lightgbm {max_rel(scores, expected):.2e}",
            flush=True,
        )
        for piece, in_flight in itertools.product(
            [int(p) for p in args.cuda_pieces.split(",")],
            [int(n) for n in args.cuda_in_flight.split(",")],
        ):
            scoring.CUDA_ROWS_PER_RUN = piece
            scoring.CUDA_RUNS_IN_FLIGHT = in_flight
            for rows in row_counts:
                for chunk in [int(c) for c in args.cuda_chunks.split(",")]:
                    if chunk >= 2 * rows or (rows > 2_000_000 and chunk < 1 << 20):
                        continue
                    rate = best_rate(
                        lambda s=session, r=rows, c=chunk: predict_chunked(s, x[:r], c),
                        rows,
                        args.repeat,
                    )
                    record(
                        f"tensor CUDA [{variant}] pieces {piece:,} x{in_flight}",
                        rows,
                        rate,
                        call_rows=chunk,
                    )
                    best_at[rows] = max(best_at.get(rows, 0.0), rate)
                    if rate > best[0] and rows == max(row_counts):
                        best = (rate, variant, chunk)
        scoring.CUDA_ROWS_PER_RUN, scoring.CUDA_RUNS_IN_FLIGHT = defaults
        del session

    rate, variant, chunk = best
    model = tensor_model(booster, variant, args.baseline_export)
    results.extend(check_best(model, x, cpu_scores, f"[{variant}] run {chunk:,}", chunk))
    gc.collect()  # give the GPU memory back before the scoring path opens its sessions

    if purchase is not None:
        results.append(check_scoring_path(purchase, booster, x[:1_000_000]))
        results.append(check_parity_gate(purchase, booster, x, args.gate_rows))

    for rows in row_counts:
        cpu_best = max(
            float(r["rows_per_s"])  # type: ignore[arg-type]
            for r in results
            if str(r.get("engine", "")).startswith("tree_ensemble CPU") and r["rows"] == rows
        )
        print(
            f"best tensor CUDA / best CPU tree_ensemble at {rows:,} rows: "
            f"{best_at[rows] / cpu_best:.1f}x"
        )
    if args.json_out:
        args.json_out.write_text(json.dumps({"results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
