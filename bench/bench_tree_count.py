"""What the trees past the first fifty buy, and what they cost: a built warehouse's
model, cut at fewer trees.

A plain script (not a test). On a warehouse that ``dbt build`` (or ``bench/run.py``) has
built, it reads ``training_examples`` as training does (``train.time_split``), fits each
head with early stopping as training does (``train.fit_head``, the registered
parameters and threads, uncapped: early stopping alone ends each head), and then, for
the model cut at 50, 100, 200, 300, 500 and 700 trees a head and whole, reports on the
validation cutoff: AUC, normalized Gini, top-decile capture, RMSE and total bias of
predicted spend (``metrics``), and the reasons' cost per thousand users
(``treeshap.TreeShap`` on both heads' cut boosters, ``--reason-rows`` validation rows).
Training, scoring, the parity recheck and the reasons all grow with
the trees; this is the evidence for choosing fewer of them with the dbt var
``max_boost_rounds`` (a quality trade-off; its default, 50, is bench/tree_cap.py's pick).

    python bench/bench_tree_count.py \
        --warehouse /tmp/purchasing-power-bench/large/dbt/warehouse.duckdb

Writes ``bench/results/<date>-tree-count.json`` and ``.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import duckdb
import lightgbm as lgb
import numpy as np

from measure import REPO, machine, write_result
from purchasing_power import metrics
from purchasing_power.features import FeatureSchema
from purchasing_power.train import (
    HEADS,
    LIGHTGBM_HURDLE,
    TrainingSettings,
    fit_head,
    time_split,
)
from purchasing_power.treeshap import TreeShap
from purchasing_power.warehouse import query, read_table

RESULTS = REPO / "bench" / "results"
CUTS = (50, 100, 200, 300, 500, 700)
UNCAPPED = 100_000  # max_boost_rounds of the fits: early stopping alone ends each head


def _cut(booster: lgb.Booster, trees: int) -> lgb.Booster:
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=trees))


def _reason_ms_per_thousand(boosters: dict[str, lgb.Booster], rows: np.ndarray) -> float:
    """Both heads' TreeSHAP on ``rows``, two threads, best of two, per thousand rows."""
    shaps = [TreeShap(booster) for booster in boosters.values()]
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        for shap in shaps:
            shap.contributions(rows, num_threads=2)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / len(rows) * 1000


def measure_cuts(connection, *, reason_rows: int, threads: int) -> dict[str, object]:
    (horizon,) = query(
        connection,
        "select horizon_days from intermediate.int_cutoffs_derived where is_scoring_cutoff",
    )[1][0]
    # the hurdle alone: this bench cuts its trees (the latest fold's fit, as training fits it)
    settings = TrainingSettings(
        horizon_days=int(horizon),
        num_threads=threads,
        candidates=(LIGHTGBM_HURDLE,),
        max_boost_rounds=UNCAPPED,
    )
    schema = FeatureSchema.from_registry(read_table(connection, "ml.feature_registry"))
    split = time_split(connection.table("ml.training_examples"), schema=schema, settings=settings)
    valid = split.features[split.is_validation]
    bought = split.purchased[split.is_validation].astype(bool)
    spend = split.spend[split.is_validation]
    boosters, fits = {}, {}
    for head in HEADS:
        start = time.perf_counter()
        boosters[head], _ = fit_head(head, split=split, settings=settings)
        fits[head] = {
            "seconds": time.perf_counter() - start,
            "trees": int(boosters[head].best_iteration or boosters[head].current_iteration()),
        }
        print(f"  {head}: {fits[head]['trees']} trees in {fits[head]['seconds']:.1f} s", flush=True)
    sample = valid[np.linspace(0, len(valid) - 1, min(reason_rows, len(valid))).astype(int)]
    most = max(fit["trees"] for fit in fits.values())
    cuts = []
    for limit in (*(cut for cut in CUTS if cut < most), most):
        trees = {head: min(limit, fits[head]["trees"]) for head in HEADS}
        cut = {head: _cut(boosters[head], trees[head]) for head in HEADS}
        probability = cut["purchase"].predict(valid)
        predicted = probability * cut["spend_given_purchase"].predict(valid)
        cuts.append(
            {
                "trees": trees,
                "auc": metrics.roc_auc(bought, probability),
                "normalized_gini": metrics.normalized_gini(spend, predicted),
                "top_decile_capture": metrics.top_decile_capture(spend, predicted),
                "rmse": metrics.rmse(spend, predicted),
                "total_bias_percent": metrics.total_bias_percent(spend, predicted),
                "reason_ms_per_thousand_users": _reason_ms_per_thousand(cut, sample),
            }
        )
        print(f"  {trees}: Gini {cuts[-1]['normalized_gini']:.4f}", flush=True)
    return {
        "training_rows": len(split.purchased[split.fold_rows(split.latest, validation=False)]),
        "validation_rows": int(split.is_validation.sum()),
        "reason_rows": len(sample),
        "fits": fits,
        "cuts": cuts,
    }


def render(result: dict) -> str:
    fitted = ", ".join(
        f"{head} {fit['trees']} trees in {fit['seconds']:.1f} s"
        for head, fit in result["fits"].items()
    )
    lines = [
        f"`bench/bench_tree_count.py --warehouse {result['warehouse']}`: "
        f"{result['training_rows']:,} training and {result['validation_rows']:,} validation "
        f"rows, {result['threads']} LightGBM threads, {result['date']}, "
        f"{result['machine']['cpus']} CPUs / {result['machine']['memory_gib']} GiB",
        "",
        f"Early stopping as training does it: {fitted}.",
        "",
        "| trees (purchase / spend) | AUC | normalized Gini | top-decile capture | RMSE | "
        "total bias % | reasons, ms per 1,000 users |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {cut['trees']['purchase']} / {cut['trees']['spend_given_purchase']} | "
        f"{cut['auc']:.4f} | {cut['normalized_gini']:.4f} | {cut['top_decile_capture']:.4f} | "
        f"{cut['rmse']:.2f} | {cut['total_bias_percent']:.2f} | "
        f"{cut['reason_ms_per_thousand_users']:.1f} |"
        for cut in result["cuts"]
    ]
    lines += [
        "",
        f"All on the validation cutoff; the reasons (TreeSHAP of both heads, two threads) on "
        f"{result['reason_rows']:,} of its rows. The last row is the model as training would "
        "register it (before the refit on every cutoff).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True, help="a built warehouse file")
    parser.add_argument("--threads", type=int, default=2, help="LightGBM threads (training's)")
    parser.add_argument("--reason-rows", type=int, default=16_384)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with duckdb.connect(str(args.warehouse), read_only=True) as connection:
        measured = measure_cuts(connection, reason_rows=args.reason_rows, threads=args.threads)
    result = {
        "benchmark": "tree_count",
        "date": dt.date.today().isoformat(),
        "warehouse": str(args.warehouse),
        "threads": args.threads,
        "machine": machine(),
        **measured,
    }
    table = render(result)
    print(table)
    write_result(args.out, f"{result['date']}-tree-count", result, table)


if __name__ == "__main__":
    main()
