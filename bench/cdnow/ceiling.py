"""How far can any method get on CDNOW at 273 days? An upper bound, and how sure a
difference of a few thousandths is (issue 34, point 2).

A plain script (not a test). Two measurements, both on all 23,570 customers:

**The ceiling.** A method that scores at ``as_of`` 1997-10-01 sees the calibration
purchases only. This bench gives LightGBM more than any build can have: it learns the
**real 39-week holdout outcomes** (spend, and whether the customer bought), from the
calibration histories of the other customers. Customers are split into ``--folds`` (5)
parts; each part is predicted by heads fitted on the other parts' histories and holdout
outcomes. The features at ``as_of`` are every calibration summary a model could use: the
twelve RFM columns of ``lightgbm_rfm`` (``cdnow/evaluate.py``), the first, last and largest
purchase day's dollars and CDs, the longest and latest gap between purchase days, and the
dollars of each of the 39 calibration weeks. Labels, features and customers are those of
the evaluation, so the holdout's own distribution is learnt exactly, with none of the
shift a build must bridge (short tenure at its training cutoffs, a 72-day label window
extended to 273 days). Several head settings are tried (``SETTINGS``), each metric's best
is reported. A learning curve (the same fit on a share of the other parts) shows whether
more customers would lift it.

**The gap to the simple methods, with its uncertainty.** Where a warehouse that
``cdnow/run.py`` built is given (``--warehouse``), the model's scores are set against each
simple method of ``cdnow/evaluate.py`` on a paired bootstrap over customers
(``--resamples``): the model's metric less the method's, its 95% interval.

    .venv/bin/python bench/cdnow/ceiling.py
    .venv/bin/python bench/cdnow/ceiling.py --warehouse data/cdnow/run-273d/purchasing_power.duckdb

Writes ``bench/results/<date>-cdnow-ceiling.md`` (and .json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightgbm as lgb
import numpy as np
import polars as pl

import holdout
from cdnow import data, evaluate
from measure import REPO, machine, write_result
from purchasing_power import metrics

GOAL = {"normalized_gini": 0.75, "spearman": 0.47, "auc": 0.78}  # issue 34, point 2
WEEKS = 39


@dataclass(frozen=True)
class Setting:
    """One head setting of the ceiling: the spend head's objective and LightGBM's knobs
    (the purchase head, binary, shares the knobs)."""

    name: str
    spend_objective: str  # "tweedie" or "log_l2": L2 on log(1 + spend), for the ranking
    learning_rate: float
    num_leaves: int
    min_data_in_leaf: int
    rounds: int


SETTINGS = (
    # the product's head knobs at the default tree cap: 15 leaves at CDNOW's 131,000
    # training examples (train.num_leaves_for), 31 before that scaling
    Setting("the product's knobs (15 leaves)", "tweedie", 0.1, 15, 50, 50),
    Setting("31 leaves, the product's before", "tweedie", 0.1, 31, 50, 50),
    Setting("small trees, slow", "tweedie", 0.01, 7, 200, 1000),
    Setting("stumps of 4 leaves", "tweedie", 0.05, 4, 500, 300),
    Setting("large trees", "tweedie", 0.02, 63, 20, 300),
    Setting("small trees, log L2", "log_l2", 0.02, 15, 100, 500),
)


def features(purchases: data.Purchases, ids: np.ndarray, *, as_of: dt.date) -> np.ndarray:
    """Every calibration summary of ``ids`` at ``as_of`` (purchases before it only)."""
    start = data.epoch_day(as_of)
    rfm = evaluate.rfm_features(purchases, ids, cutoff=start)
    before = data._frame(purchases.select(purchases.day < start))
    days = (
        before.group_by("user_id", "day")
        .agg(dollars=pl.col("amount").sum(), cds=pl.col("quantity").sum())
        .sort("user_id", "day")
        .with_columns(gap=pl.col("day").diff().over("user_id"))
    )
    summaries = days.group_by("user_id").agg(
        first_dollars=pl.col("dollars").first(),
        first_cds=pl.col("cds").first(),
        last_dollars=pl.col("dollars").last(),
        last_cds=pl.col("cds").last(),
        longest_gap=pl.col("gap").max(),
        latest_gap=pl.col("gap").last(),
    )
    week = ((start - 1 - pl.col("day")) // 7).clip(0, WEEKS - 1).alias("week")
    weekly = (
        days.with_columns(week)
        .group_by("user_id", "week")
        .agg(pl.col("dollars").sum())
        .pivot(on="week", index="user_id", values="dollars")
    )
    weekly = weekly.select(
        "user_id",
        *(pl.col(str(w)).fill_null(0.0).alias(f"week_{w}") if str(w) in weekly.columns
          else pl.lit(0.0).alias(f"week_{w}") for w in range(WEEKS)),
    )  # fmt: skip
    users = pl.DataFrame({"user_id": list(ids)}, schema={"user_id": pl.String})
    extra = (
        users.join(summaries, on="user_id", how="left", maintain_order="left")
        .join(weekly, on="user_id", how="left", maintain_order="left")
        .drop("user_id")
        .to_numpy()
        .astype(np.float64)
    )
    return np.column_stack([rfm, extra])


def cross_fitted(
    x: np.ndarray, spend: np.ndarray, bought: np.ndarray, setting: Setting, *, folds: int,
    seed: int, share: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Out-of-fold predicted spend and purchase probability: each part predicted by heads
    fitted on ``share`` of the other parts' customers."""
    rng = np.random.default_rng(seed)
    part = rng.integers(0, folds, len(spend))
    kept = rng.random(len(spend)) < share
    knobs = {
        "learning_rate": setting.learning_rate, "num_leaves": setting.num_leaves,
        "min_data_in_leaf": setting.min_data_in_leaf, "feature_fraction": 0.9,
        "lambda_l2": 1.0, "seed": seed, "deterministic": True, "force_row_wise": True,
        "num_threads": 2, "verbosity": -1,
    }  # fmt: skip
    if setting.spend_objective == "tweedie":
        spend_knobs, target = {**knobs, "objective": "tweedie"}, spend
    else:
        spend_knobs, target = {**knobs, "objective": "regression"}, np.log1p(spend)
    predicted, probability = np.zeros(len(spend)), np.zeros(len(spend))
    for k in range(folds):
        fit, held = (part != k) & kept, part == k
        head = lgb.train(spend_knobs, lgb.Dataset(x[fit], target[fit]), setting.rounds)
        predicted[held] = head.predict(x[held])
        binary = {**knobs, "objective": "binary"}
        head = lgb.train(binary, lgb.Dataset(x[fit], bought[fit].astype(float)), setting.rounds)
        probability[held] = head.predict(x[held])
    return predicted, probability


def scored(spend: np.ndarray, bought: np.ndarray, predicted: np.ndarray,
           probability: np.ndarray) -> dict[str, float]:  # fmt: skip
    return {
        "normalized_gini": metrics.normalized_gini(spend, predicted),
        "spearman": metrics.spearman(spend, predicted),
        "auc": metrics.roc_auc(bought.astype(int), probability),
    }


def paired_bootstrap(
    spend: np.ndarray, bought: np.ndarray, model: holdout.Prediction,
    other: holdout.Prediction, *, resamples: int, seed: int,
) -> dict[str, dict[str, float]]:  # fmt: skip
    """The model's metric less ``other``'s on the same customers, and its 95% interval
    over ``resamples`` resamples of the customers."""
    rng = np.random.default_rng(seed)

    def difference(rows: np.ndarray) -> dict[str, float]:
        a = scored(spend[rows], bought[rows], model.spend[rows], model.purchase_score[rows])
        b = scored(spend[rows], bought[rows], other.spend[rows], other.purchase_score[rows])
        return {metric: a[metric] - b[metric] for metric in a}

    point = difference(np.arange(len(spend)))
    drawn = [difference(rng.integers(0, len(spend), len(spend))) for _ in range(resamples)]
    return {
        metric: {
            "difference": point[metric],
            "low": float(np.quantile([d[metric] for d in drawn], 0.025)),
            "high": float(np.quantile([d[metric] for d in drawn], 0.975)),
        }
        for metric in point
    }


def render(result: dict) -> str:
    lines = [
        f"# CDNOW at 273 days: the ceiling, and the gap to the simple methods, {result['date']}",
        "",
        f"`{result['command']}` at {result['commit']}; {result['machine']['cpus']} CPUs, "
        f"{result['seconds']:.0f} s",
        "",
        f"{result['customers']:,} customers, {result['features']} features at as_of "
        f"{data.AS_OF}. **Ceiling**: LightGBM fitted on the real 39-week holdout outcomes "
        f"of the other customers ({result['folds']}-fold cross-fitting over customers), "
        "what no build can learn. Issue 34's goal: "
        + ", ".join(f"{k} >= {v}" for k, v in GOAL.items())
        + ".",
        "",
        "| head setting | normalized Gini | Spearman | AUC |",
        "|---|---:|---:|---:|",
    ]
    for name, row in result["ceiling"].items():
        lines.append(f"| {name} | {row['normalized_gini']:.4f} | {row['spearman']:.4f} "
                     f"| {row['auc']:.4f} |")  # fmt: skip
    best = result["best"]
    lines.append(f"| **best of each** | **{best['normalized_gini']:.4f}** | "
                 f"**{best['spearman']:.4f}** | **{best['auc']:.4f}** |")  # fmt: skip
    lines += [
        "",
        f"Learning curve ({result['curve_setting']}): each part predicted from a share of "
        "the other parts' customers.",
        "",
        "| share of the other parts | customers fitted on (about) | normalized Gini "
        "| Spearman | AUC |",
        "|---:|---:|---:|---:|---:|",
    ]
    for share, row in result["curve"].items():
        fitted = result["customers"] * (result["folds"] - 1) / result["folds"] * float(share)
        lines.append(f"| {float(share):.2f} | {fitted:,.0f} | {row['normalized_gini']:.4f} "
                     f"| {row['spearman']:.4f} | {row['auc']:.4f} |")  # fmt: skip
    if result.get("gaps"):
        lines += [
            "",
            f"The model that scored `{result['scored_by']}` against each simple method: "
            "its metric less the method's, and the 95% interval of a paired bootstrap over "
            f"customers ({result['resamples']:,} resamples).",
            "",
            "| against | normalized Gini | Spearman | AUC |",
            "|---|---|---|---|",
        ]
        for method, gap in result["gaps"].items():
            cells = [
                f"{gap[m]['difference']:+.4f} ({gap[m]['low']:+.4f} .. {gap[m]['high']:+.4f})"
                for m in ("normalized_gini", "spearman", "auc")
            ]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=REPO / "data" / "cdnow")
    parser.add_argument(
        "--warehouse", type=Path, default=None,
        help="a warehouse of cdnow/run.py at 273 days: the model's gaps",
    )  # fmt: skip
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    started = time.monotonic()
    master, _ = data.fetch(args.cache)
    purchases = data.read_master(master)
    customers = data.summarize(purchases, as_of=data.AS_OF, holdout_days=data.HOLDOUT_DAYS)
    spend, bought = customers.holdout_spend, customers.holdout_purchased
    x = features(purchases, customers.customer_id, as_of=data.AS_OF)

    ceiling = {}
    for setting in SETTINGS:
        predicted, probability = cross_fitted(x, spend, bought, setting, folds=args.folds,
                                              seed=args.seed)  # fmt: skip
        ceiling[setting.name] = scored(spend, bought, predicted, probability)
        print(setting.name, ceiling[setting.name], flush=True)
    best = {m: max(row[m] for row in ceiling.values()) for m in GOAL}
    by_gini = max(SETTINGS, key=lambda s: ceiling[s.name]["normalized_gini"])
    curve = {}
    for share in (0.25, 0.5, 1.0):
        predicted, probability = cross_fitted(x, spend, bought, by_gini, folds=args.folds,
                                              seed=args.seed, share=share)  # fmt: skip
        curve[str(share)] = scored(spend, bought, predicted, probability)
    result = {
        "date": dt.date.today().isoformat(),
        "command": shlex.join(
            ["python", "bench/cdnow/ceiling.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "commit": holdout.commit(),
        "customers": len(spend),
        "features": x.shape[1],
        "folds": args.folds,
        "ceiling": ceiling,
        "best": best,
        "goal": GOAL,
        "curve_setting": by_gini.name,
        "curve": curve,
    }
    if args.warehouse is not None:
        model_spend, model_probability, described = holdout.model_scores(
            args.warehouse, customers.customer_id
        )
        model = holdout.Prediction(holdout.MODEL, model_spend, model_probability)
        simple = [
            evaluate.rfm_decay(customers, as_of=data.AS_OF, horizon_days=data.HOLDOUT_DAYS),
            evaluate.bg_nbd_gamma_gamma(customers, as_of=data.AS_OF,
                                        horizon_days=data.HOLDOUT_DAYS),
            evaluate.lightgbm_rfm(purchases, customers, as_of=data.AS_OF,
                                  horizon_days=data.HOLDOUT_DAYS),
        ]  # fmt: skip
        result["scored_by"] = described
        result["resamples"] = args.resamples
        result["model"] = scored(spend, bought, model_spend, model_probability)
        result["gaps"] = {
            other.method: paired_bootstrap(spend, bought, model, other,
                                           resamples=args.resamples, seed=args.seed)
            for other in simple
        }  # fmt: skip
    result["seconds"] = time.monotonic() - started
    result["machine"] = machine()
    text = render(result)
    print(text)
    write_result(args.out, f"{result['date']}-cdnow-ceiling", result, text)
    return result


if __name__ == "__main__":
    main()
