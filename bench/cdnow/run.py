"""CDNOW through the whole pipeline, judged against the simple methods (issue 34).

A plain script (not a test). It downloads the ``lifetimes==0.11.3`` wheel once into
``data/cdnow/`` (git-ignored), checks CDNOW_master.txt's sha256, converts the
calibration period (before ``as_of``) to the input contract, runs ``dbt build`` (less the
unit tests: ``holdout.build``) into a warehouse and registry of its own with ``as_of:
1997-10-01`` and the horizon asked, and scores every method over all 23,570 customers
(non-buyers included) on their spend in the 39 holdout weeks (1997-10-01 .. 1998-06-30):
the model's scores (x 273 / horizon when it was built at another horizon), and the
baselines of ``cdnow/evaluate.py``. It also fits BG/NBD on the classic 1/10 sample and
checks it against the published fit.

    .venv/bin/python bench/cdnow/run.py                      # horizon_days 273
    .venv/bin/python bench/cdnow/run.py --horizon-days 90    # scores x 273/90

Prints one table and writes it to ``bench/results/<date>-cdnow[-<h>d].md`` (and .json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb
import numpy as np

import holdout
from cdnow import data, evaluate
from measure import REPO, Warehouse, machine, write_result

PUBLISHED_TOLERANCE = 0.01  # relative, on each of r, alpha, a, b


def judge(customers: data.Customers, prediction: holdout.Prediction) -> dict[str, float]:
    return holdout.evaluate(customers.holdout_spend, customers.holdout_purchased, prediction)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon-days", type=int, default=data.HOLDOUT_DAYS)
    parser.add_argument("--cache", type=Path, default=REPO / "data" / "cdnow")
    parser.add_argument(
        "--work", type=Path, default=None, help="dbt target (default: cache/run-<h>d)"
    )
    parser.add_argument(
        "--skip-build", action="store_true", help="evaluate the last build's scores"
    )
    parser.add_argument(
        "--training-threads", type=int, default=None,
        help="the dbt var training_threads (default: the project's)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    horizon = args.horizon_days
    work = args.work or args.cache / f"run-{horizon}d"

    master, sample = data.fetch(args.cache)
    purchases = data.read_master(master)
    customers = data.summarize(purchases, as_of=data.AS_OF, holdout_days=data.HOLDOUT_DAYS)
    raw = args.cache / "raw"
    data.write_events(purchases.select(purchases.day < data.epoch_day(data.AS_OF)), raw)
    print(f"CDNOW: {len(purchases):,} purchase lines, {len(customers.customer_id):,} customers, "
          f"{customers.holdout_purchased.sum():,} buy in the holdout")  # fmt: skip

    rows: dict[str, dict[str, float]] = {}
    notes: dict[str, str] = {}
    seconds = None
    succeeded = True
    if not args.skip_build:
        started = time.monotonic()
        extra = {"retrain": True}
        if args.training_threads is not None:
            extra["training_threads"] = args.training_threads
        built = holdout.build(raw, work, as_of=data.AS_OF, horizon_days=horizon, extra_vars=extra)
        succeeded, seconds = built.succeeded, built.seconds
        print(f"dbt build (horizon_days {horizon}): {'ok' if succeeded else 'FAILED'} in "
              f"{time.monotonic() - started:.0f} s\n{built.tail}")  # fmt: skip
    model_name = (
        "model"
        if horizon == data.HOLDOUT_DAYS
        else f"model ({horizon}d x {data.HOLDOUT_DAYS}/{horizon})"
    )
    if (Warehouse(work).path).exists():
        try:
            spend, probability, described = holdout.model_scores(
                Warehouse(work).path, customers.customer_id
            )
        except duckdb.Error as error:
            print(f"no scores: {error}")
        else:
            prediction = holdout.Prediction(
                model_name, spend * data.HOLDOUT_DAYS / horizon, probability, described
            )
            rows[model_name], notes[model_name] = judge(customers, prediction), described
    for fit in (evaluate.rfm_decay, evaluate.bg_nbd_gamma_gamma):
        prediction = fit(customers, as_of=data.AS_OF, horizon_days=data.HOLDOUT_DAYS)
        rows[prediction.method] = judge(customers, prediction)
        notes[prediction.method] = prediction.note
    prediction = evaluate.lightgbm_rfm(
        purchases, customers, as_of=data.AS_OF, horizon_days=data.HOLDOUT_DAYS
    )
    rows[prediction.method] = judge(customers, prediction)
    notes[prediction.method] = prediction.note

    ids = data.read_sample_ids(sample)
    in_sample = np.isin(customers.customer_id, list(ids))
    sampled = data.Customers(*(np.asarray(field)[in_sample] for field in vars(customers).values()))
    published = evaluate.check_published_fit(
        sampled, as_of=data.AS_OF, tolerance=PUBLISHED_TOLERANCE
    )

    table = holdout.markdown_table(rows)
    fitted = published["fitted"]
    check = (
        f"BG/NBD on the 1/10 sample ({published['customers']:,} customers, 39 weeks): "
        + ", ".join(
            f"{k} {fitted[k]:.3f} (published {v})" for k, v in published["published"].items()
        )
        + f"; largest relative difference {published['max_relative_difference']:.4f}, "
        + ("within" if published["within_tolerance"] else "OUTSIDE")
        + f" the tolerance {PUBLISHED_TOLERANCE}"
    )
    command = "python bench/cdnow/run.py" + (
        "" if horizon == data.HOLDOUT_DAYS else f" --horizon-days {horizon}"
    )
    if args.training_threads is not None:
        command += f" --training-threads {args.training_threads}"
    text = (
        f"# CDNOW, as_of {data.AS_OF}, holdout {data.HOLDOUT_DAYS} days, horizon_days {horizon}\n\n"
        f"`{command}` at {holdout.commit()}"
        f" ({len(customers.customer_id):,} customers, non-buyers included)"
        + ("" if succeeded else "; **dbt build failed**") + "\n\n"
        + table + "\n" + "\n".join(f"- {k}: {v}" for k, v in notes.items()) + f"\n- {check}\n"
    )  # fmt: skip
    print(text)
    name = f"{dt.date.today().isoformat()}-cdnow" + (
        "" if horizon == data.HOLDOUT_DAYS else f"-{horizon}d"
    )
    result = {"horizon_days": horizon, "metrics": rows, "notes": notes,
              "published_fit": published, "build_seconds": seconds,
              "build_succeeded": succeeded, "machine": machine()}  # fmt: skip
    write_result(args.out, name, result, text)
    if not published["within_tolerance"]:
        sys.exit("BG/NBD on the 1/10 sample is outside the published fit's tolerance")


if __name__ == "__main__":
    main()
