"""Which features extrapolate badly on CDNOW: the model retrained without some of them.

Reads a warehouse that ``bench/cdnow/run.py`` built (``training_examples``,
``feature_registry``, the scoring cutoff's ``user_features``), trains the hurdle as
``ml_models`` does (``train.time_split`` and ``train.train_models``, same settings) on
the registry's features less those named, predicts the scoring cutoff with LightGBM and
judges it on the holdout like ``run.py`` (x 273 / horizon).

    .venv/bin/python bench/cdnow/ablate.py --work data/cdnow/run-90d \\
        --drop days_since_first_event,days_since_first_purchase
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb
import numpy as np

import holdout
from cdnow import data
from measure import REPO
from purchasing_power.features import FeatureSchema
from purchasing_power.train import LIGHTGBM_HURDLE, TrainingSettings, time_split, train_models


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "data" / "cdnow" / "run-90d")
    parser.add_argument("--cache", type=Path, default=REPO / "data" / "cdnow")
    parser.add_argument("--drop", default="", help="comma-separated features to leave out")
    parser.add_argument("--no-holdout", action="store_true",
                        help="not CDNOW: print the validation cutoff's figures only")  # fmt: skip
    args = parser.parse_args(argv)
    dropped = {name for name in args.drop.split(",") if name}

    with duckdb.connect(str(args.work / "warehouse.duckdb"), read_only=True) as connection:
        ((horizon,),) = connection.execute(
            "select horizon_days from intermediate.int_cutoffs_derived where is_scoring_cutoff"
        ).fetchall()
        registry = connection.table("ml.feature_registry").to_arrow_table()
        schema = FeatureSchema.from_registry(registry)
        unknown = dropped - set(schema.names)
        if unknown:
            raise SystemExit(f"not features: {sorted(unknown)}")
        kept = FeatureSchema(tuple(f for f in schema.features if f.name not in dropped))
        # one thread: two OpenMP threads spin against each other on a shared 2-core machine;
        # the hurdle alone, whose features this ablates
        settings = TrainingSettings(
            horizon_days=int(horizon), num_threads=1, candidates=(LIGHTGBM_HURDLE,)
        )
        split = time_split(connection.table("ml.training_examples"), schema=kept,
                           settings=settings)  # fmt: skip
        scoring = connection.sql(
            "select * from features.user_features where is_scoring_cutoff order by user_id"
        ).to_arrow_table()
    result = train_models(split, settings=settings)
    if result.method != LIGHTGBM_HURDLE:
        raise SystemExit(f"{result.method} beat the hurdle on the folds: no trees to ablate")
    validation = {(e.method, e.metric): e.value for e in result.evaluations}
    print(f"{len(kept.names)} features, best iterations {result.best_iterations}")
    print("validation, mean over the folds:")
    for method in sorted({m for m, _ in validation}):
        print(f"  {method:<20}", "  ".join(
            f"{metric} {validation[(method, metric)]:.3f}"
            for metric in ("auc", "normalized_gini", "spearman", "total_bias_percent")
        ))  # fmt: skip
    if args.no_holdout:
        return
    master, _ = data.fetch(args.cache)
    purchases = data.read_master(master)
    customers = data.summarize(purchases, as_of=data.AS_OF, holdout_days=data.HOLDOUT_DAYS)
    probability, spend = result.heads.predict(kept.to_matrix(scoring))
    index = {customer: i for i, customer in enumerate(customers.customer_id)}
    full_spend = np.zeros(len(index))
    full_probability = np.zeros(len(index))
    for user_id, s, p in zip(scoring.column("user_id").to_pylist(), spend, probability,
                             strict=True):  # fmt: skip
        if user_id in index:
            full_spend[index[user_id]], full_probability[index[user_id]] = s, p
    name = f"model less {', '.join(sorted(dropped)) or 'nothing'}"
    prediction = holdout.Prediction(name, full_spend * data.HOLDOUT_DAYS / horizon,
                                    full_probability)  # fmt: skip
    figures = holdout.evaluate(customers.holdout_spend, customers.holdout_purchased, prediction)
    print(holdout.markdown_table({name: figures}))


if __name__ == "__main__":
    main()
