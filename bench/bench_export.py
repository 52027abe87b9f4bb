"""Throughput and parity of the exported ONNX graphs against ``lightgbm.predict``.

A plain script (not a test). It trains a tweedie model (300 trees, 63 leaves, ~40
features by default) on synthetic spend-like data, exports both graph kinds with
``purchasing_power.export`` and scores ``--rows`` rows with

* ``lightgbm.Booster.predict`` (``num_threads=--threads``),
* onnxruntime, ``tree_ensemble`` graph, CPU execution provider
  (``intra_op_num_threads=--threads``),
* onnxruntime, ``tensor`` graph, CPU execution provider (on ``--tensor-rows`` rows, in
  chunks: the level-by-level traversal is meant for GPUs and is slow on CPUs),
* with ``--cuda``: onnxruntime, ``tensor`` graph, CUDA execution provider (all rows,
  host-to-device copies included), plus the execution provider every node ran on.

Rows per second are the best of ``--repeat`` timed runs after one warm-up; ratios are
against ``lightgbm.predict`` measured in the same run.

    python bench/bench_export.py                      # defaults: 1,000,000 rows
    python bench/bench_export.py --rows 200000 --cuda
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from measure import best_time
from purchasing_power.export import INPUT_NAME, OUTPUT_NAME, booster_to_onnx


def make_data(rng: np.random.Generator, rows: int, features: int) -> np.ndarray:
    x = rng.normal(size=(rows, features))
    x[:, 1::4] = rng.exponential(scale=40.0, size=x[:, 1::4].shape)  # spend-like
    x[:, 2::4] = rng.integers(0, 12, size=x[:, 2::4].shape)  # counts
    x[rng.random(x.shape) < 0.03] = np.nan
    x[rng.random(x.shape) < 0.10] = 0.0
    return x


def make_target(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    z = np.nan_to_num(x)
    eta = 0.4 * z[:, 0] + 0.01 * z[:, 1] - 0.1 * z[:, 2] + 0.2 * np.sin(z[:, 3]) + 0.3 * z[:, 4]
    eta += 0.1 * z[:, 5:9].sum(axis=1)
    return np.where(rng.random(len(x)) < 0.45, 0.0, rng.gamma(2.0, np.exp(np.clip(eta, -3, 4))))


def session(
    model: onnx.ModelProto, providers: list[str], threads: int, profile_dir: str | None = None
) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if profile_dir is not None:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(profile_dir, "ort_profile")
    return ort.InferenceSession(model.SerializeToString(), options, providers=providers)


def run_chunked(sess: ort.InferenceSession, x: np.ndarray, chunk: int) -> np.ndarray:
    parts = [
        sess.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + chunk]})[0] for i in range(0, len(x), chunk)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def diffs(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    abs_diff = np.abs(pred - ref)
    rel = abs_diff / np.maximum(np.abs(ref), np.finfo(np.float64).tiny)
    return float(abs_diff.max()), float(rel.max())


def node_providers(sess: ort.InferenceSession) -> Counter[tuple[str, str]]:
    """(op_type, provider) of every node executed, from an onnxruntime profile."""
    path = sess.end_profiling()
    events = json.loads(Path(path).read_text())
    seen: dict[str, tuple[str, str]] = {}
    for event in events:
        args = event.get("args", {})
        if event.get("cat") == "Node" and "provider" in args:
            seen[event["name"]] = (args.get("op_name", "?"), args["provider"])
    return Counter(seen.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--leaves", type=int, default=63)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tensor-rows", type=int, default=50_000)
    parser.add_argument("--tensor-chunk", type=int, default=10_000)
    parser.add_argument("--cuda", action="store_true", help="also run the tensor graph on CUDA")
    parser.add_argument("--cuda-chunk", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    x_train = make_data(rng, args.train_rows, args.features)
    y_train = make_target(rng, x_train)
    x = make_data(rng, args.rows, args.features)

    start = time.perf_counter()
    booster = lgb.train(
        {
            "objective": "tweedie",
            "num_leaves": args.leaves,
            "min_data_in_leaf": 20,
            "learning_rate": 0.05,
            "num_threads": args.threads,
            "deterministic": True,
            "seed": args.seed,
            "verbose": -1,
        },
        lgb.Dataset(x_train, y_train),
        num_boost_round=args.trees,
    )
    train_s = time.perf_counter() - start
    leaves = [info["num_leaves"] for info in booster.dump_model()["tree_info"]]

    start = time.perf_counter()
    tree_model = booster_to_onnx(booster, graph="tree_ensemble")
    tree_export_s = time.perf_counter() - start
    start = time.perf_counter()
    tensor_model = booster_to_onnx(booster, graph="tensor")
    tensor_export_s = time.perf_counter() - start
    levels = sum(1 for n in tensor_model.graph.node if n.op_type == "Where")

    print(
        f"model: tweedie, {booster.num_trees()} trees, leaves max {max(leaves)} / "
        f"mean {np.mean(leaves):.1f}, {args.features} features, tensor graph levels {levels}; "
        f"trained on {args.train_rows:,} rows in {train_s:.1f}s; export "
        f"tree_ensemble {tree_export_s:.2f}s, tensor {tensor_export_s:.2f}s"
    )
    providers = ort.get_available_providers()
    print(f"onnxruntime {ort.__version__}, lightgbm {lgb.__version__}, providers {providers}")

    results: list[dict[str, object]] = []

    lgb_s, ref = best_time(lambda: booster.predict(x, num_threads=args.threads), args.repeat)
    lgb_rate = len(x) / lgb_s
    results.append({"engine": "lightgbm.predict", "rows": len(x), "rows_per_s": lgb_rate})

    sess = session(tree_model, ["CPUExecutionProvider"], args.threads)
    te_s, te_pred = best_time(lambda: sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0], args.repeat)
    results.append(
        {"engine": "ort tree_ensemble (CPU)", "rows": len(x), "rows_per_s": len(x) / te_s}
    )
    results[-1]["max_abs_diff"], results[-1]["max_rel_diff"] = diffs(te_pred, ref)
    del sess

    n_tensor = min(args.tensor_rows, len(x))
    sess = session(tensor_model, ["CPUExecutionProvider"], args.threads)
    tc_s, tc_pred = best_time(
        lambda: run_chunked(sess, x[:n_tensor], args.tensor_chunk), max(1, args.repeat - 2)
    )
    results.append({"engine": "ort tensor (CPU)", "rows": n_tensor, "rows_per_s": n_tensor / tc_s})
    results[-1]["max_abs_diff"], results[-1]["max_rel_diff"] = diffs(tc_pred, ref[:n_tensor])
    del sess

    if args.cuda:
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise SystemExit("--cuda: onnxruntime has no CUDAExecutionProvider here")
        with tempfile.TemporaryDirectory() as tmp:
            probe = session(
                tensor_model, ["CUDAExecutionProvider", "CPUExecutionProvider"], args.threads, tmp
            )
            if probe.get_providers()[0] != "CUDAExecutionProvider":
                raise SystemExit(f"CUDA provider not active: {probe.get_providers()}")
            probe.run([OUTPUT_NAME], {INPUT_NAME: x[:1000]})
            placement = node_providers(probe)
        del probe
        by_provider: dict[str, dict[str, int]] = {}
        for (op, provider), count in sorted(placement.items()):
            by_provider.setdefault(provider, {})[op] = count
        print("tensor graph node placement (op: nodes):")
        for provider, ops in by_provider.items():
            print(f"  {provider}: {ops}")

        sess = session(tensor_model, ["CUDAExecutionProvider", "CPUExecutionProvider"], 1)
        cu_s, cu_pred = best_time(lambda: run_chunked(sess, x, args.cuda_chunk), args.repeat)
        results.append(
            {"engine": "ort tensor (CUDA, incl. H2D)", "rows": len(x), "rows_per_s": len(x) / cu_s}
        )
        results[-1]["max_abs_diff"], results[-1]["max_rel_diff"] = diffs(cu_pred, ref)
        del sess

        # TreeEnsemble in a CUDA session: ai.onnx.ml has no CUDA kernels (CPU fallback).
        sess = session(tree_model, ["CUDAExecutionProvider", "CPUExecutionProvider"], args.threads)
        ce_s, ce_pred = best_time(lambda: sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0], 1)
        results.append(
            {
                "engine": "ort tree_ensemble (CUDA session)",
                "rows": len(x),
                "rows_per_s": len(x) / ce_s,
            }
        )
        results[-1]["max_abs_diff"], results[-1]["max_rel_diff"] = diffs(ce_pred, ref)
        del sess

    header = ("engine", "rows", "rows/s", "vs lgb", "max abs diff", "max rel diff")
    print("\n{:34} {:>10} {:>14} {:>8} {:>13} {:>13}".format(*header))
    for r in results:
        rate = float(r["rows_per_s"])  # type: ignore[arg-type]
        abs_d, rel_d = r.get("max_abs_diff"), r.get("max_rel_diff")
        print(
            "{:34} {:>10,} {:>14,.0f} {:>7.2f}x {:>13} {:>13}".format(
                str(r["engine"]),
                int(r["rows"]),  # type: ignore[call-overload]
                rate,
                rate / lgb_rate,
                "" if abs_d is None else f"{abs_d:.2e}",
                "" if rel_d is None else f"{rel_d:.2e}",
            )
        )
    print(json.dumps({"threads": args.threads, "results": results}))


if __name__ == "__main__":
    main()
