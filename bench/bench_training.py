"""What choosing the model costs: ``time_split`` and ``train_models`` on a built warehouse,
in CPU seconds and boosting rounds (issue 34 point 8).

A plain script (not a test). Wall time on a shared machine moves with everything else
running there, and LightGBM's threads spin waiting for each other when the cores are
busy; one thread's CPU time and the number of boosting rounds move far less, so they
are what it reports, best of ``--repeat`` runs. Run it from two checkouts on the same
warehouse to compare them (an older checkout: ``PYTHONPATH=<checkout>/python``):

    python bench/bench_training.py \\
        --warehouse /tmp/purchasing-power-bench/small/dbt/warehouse.duckdb

What the candidates and folds alone cost, in one checkout: the defaults against one
candidate on one fold (what training was before them) on the same warehouse:

    python bench/bench_training.py --warehouse W --threads 2 --repeat 1
    python bench/bench_training.py --warehouse W --threads 2 --repeat 1 \\
        --candidates lightgbm_hurdle --validation-folds 1
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

# one BLAS thread (the BTYD fits): a waiting OpenBLAS thread spins, and its spinning is
# CPU time of this process
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import duckdb
import lightgbm as lgb

from purchasing_power.features import FeatureSchema
from purchasing_power.train import (
    CANDIDATES,
    VALIDATION_FOLDS,
    TrainingSettings,
    time_split,
    train_models,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--candidates", nargs="+", default=None,
                        help="the candidates (default: train.CANDIDATES)")  # fmt: skip
    parser.add_argument("--validation-folds", type=int, default=None,
                        help="the folds (default: train.VALIDATION_FOLDS)")  # fmt: skip
    args = parser.parse_args()
    rounds = [0]
    update = lgb.Booster.update

    def counted(self, *positional, **named):
        rounds[0] += 1
        return update(self, *positional, **named)

    lgb.Booster.update = counted
    with duckdb.connect(str(args.warehouse), read_only=True) as connection:
        ((horizon, window),) = connection.execute(
            "select horizon_days, label_horizon_days from intermediate.int_cutoffs_derived"
            " where is_scoring_cutoff"
        ).fetchall()
        schema = FeatureSchema.from_registry(
            connection.table("ml.feature_registry").to_arrow_table()
        )
        settings = TrainingSettings(
            horizon_days=int(horizon),
            label_horizon_days=int(window) if window < horizon else None,
            num_threads=args.threads,
            candidates=tuple(args.candidates or CANDIDATES),
            validation_folds=args.validation_folds or VALIDATION_FOLDS,
        )
        best = None
        for _ in range(args.repeat):
            rounds[0] = 0
            wall, cpu = time.perf_counter(), time.process_time()
            split = time_split(connection.table("ml.training_examples"), schema=schema,
                               settings=settings)  # fmt: skip
            result = train_models(split, settings=settings)
            figures = (time.process_time() - cpu, time.perf_counter() - wall, rounds[0])
            best = figures if best is None or figures < best else best
    cpu, wall, count = best
    print(
        f"{len(split.purchased):,} training rows, {args.threads} thread(s): {cpu:.1f} CPU s "
        f"({wall:.1f} s wall), {count:,} boosting rounds; candidates "
        f"{', '.join(settings.candidates)} on up to {settings.validation_folds} fold(s); "
        f"{getattr(result, 'method', 'lightgbm_hurdle')} scores; the process's peak "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    )


if __name__ == "__main__":
    main()
