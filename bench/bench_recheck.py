"""What the parity recheck of a reused model costs: on every scoring row against the
sample (issue 40, point 1).

A plain script (not a test). It opens a built warehouse read-only, reads the scoring
cutoff's ``user_features`` and the active model (``ml.ml_models``), and runs the recheck
``ml_models`` runs, alternately on every row (as where a computing package's version
changed) and on the sample, edge cases and rows near a tier bound; wall and CPU
seconds of this process, median of ``--repeat`` runs each:

    python bench/bench_recheck.py --state /tmp/purchasing-power-bench/monitoring-large/state

``--state``: a bench's dbt folder (``warehouse.duckdb`` and ``artifacts/``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from purchasing_power import parity, warehouse
from purchasing_power.features import FeatureSchema
from purchasing_power.registry import list_models
from purchasing_power.tiers import Tier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with warehouse.open_file(args.state / "warehouse.duckdb", read_only=True) as connection:
        ((active,),) = connection.sql(
            "select model_version from ml.ml_models where is_active"
        ).fetchall()
        features = connection.sql(
            "select * from features.user_features where is_scoring_cutoff order by user_id"
        ).to_arrow_table()
        tiers = Tier.from_table(
            connection.sql("select * from reference.power_tiers").to_arrow_table()
        )
    model = next(m for m in list_models(args.state / "artifacts") if m.model_version == active)
    schema = FeatureSchema.from_card(model.card["features"], model.card.get("btyd_features"))
    matrix = schema.to_matrix(features)
    installed = parity.package_versions

    def changed() -> dict[str, str]:
        return {**installed(), "numpy": "changed"}

    seconds: dict[str, list[tuple[float, float]]] = {"every row": [], "sample": []}
    found = {}
    for repeat in range(args.repeat):
        kinds = ("every row", "sample") if repeat % 2 == 0 else ("sample", "every row")
        for kind in kinds:
            parity.package_versions = changed if kind == "every row" else installed
            wall, cpu = time.perf_counter(), time.process_time()
            found[kind] = parity.recheck_parity(model, scoring_features=matrix, tiers=tiers)
            seconds[kind].append((time.perf_counter() - wall, time.process_time() - cpu))
    parity.package_versions = installed
    trees = model.card.get("best_iterations")
    print(
        f"{model.model_version}: {len(matrix):,} scoring rows x {matrix.shape[1]} features, "
        f"best iterations {trees}; median of {args.repeat}"
    )
    print("| recheck | rows | edge cases | wall s | CPU s |")
    print("|---|---:|---:|---:|---:|")
    for kind, runs in seconds.items():
        print(
            f"| {kind} | {found[kind].rows:,} | {found[kind].edge_cases:,} "
            f"| {statistics.median(w for w, _ in runs):.1f} "
            f"| {statistics.median(c for _, c in runs):.1f} |"
        )
    sample = found["sample"]
    spend_diff = sample.figures["tree_ensemble"]["spend"]["max_rel_diff"]
    ratio = statistics.median(w for w, _ in seconds["sample"]) / statistics.median(
        w for w, _ in seconds["every row"]
    )
    print(
        f"sample / every row: {ratio:.2f} of the wall; the sample: {sample.sampled:,} drawn, "
        f"{sample.near_bound:,} within {parity.TIER_BOUND_DISTANCE:g} of a tier bound; "
        f"max relative spend difference {spend_diff:.2g}"
    )


if __name__ == "__main__":
    main()
