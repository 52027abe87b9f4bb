"""Training's defaults, chosen on the zoo by a rule (issue 34, point 6): of the settings
tried (``SETTINGS``: the heads' knobs, leaves per tree and the least rows per leaf, and
the training cutoffs' windows), the one with the best mean of (normalized Gini + AUC) / 2
over every shop, among those no worse than today's defaults by more than ``TOLERANCE`` on
any shop's Gini or AUC; today's defaults where none is.

A plain script (not a test). Each shop of the zoo (every generator preset and CDNOW) and,
with ``--medium``, a medium shop is built and judged on its held-out horizon as
``bench/zoo.py`` does it (``zoo.run_shop``, no demand build): first at today's knobs,
then with each setting's dbt vars, every build with ``retrain: true``: a setting of
``head_params`` alone into the same warehouse (its SQL already built, so only the
training differs), one that moves the cutoffs into an emptied one. What scores is
what the build chose: a setting can change which candidate or baseline wins the folds.

    .venv/bin/python bench/training_defaults.py
    .venv/bin/python bench/training_defaults.py --no-cdnow --presets grocery --settings leaves_15

Writes ``bench/results/<date>-training-defaults.md`` (and .json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from pathlib import Path

import duckdb

import holdout
import tree_cap
import zoo
from measure import REPO, Warehouse, machine, write_result
from purchasing_power.generate import PRESETS
from purchasing_power.train import HeadParams
from run import DAYS, USERS

DEFAULTS = "defaults"
# the dbt vars each setting passes (head_params: both heads' knobs)
SETTINGS: dict[str, dict[str, object]] = {
    DEFAULTS: {},
    # 31 leaves whatever the rows: the default before leaves were scaled to the rows
    "leaves_31": {"head_params": {"num_leaves": 31}},
    "leaves_15": {"head_params": {"num_leaves": 15}},
    "leaves_7": {"head_params": {"num_leaves": 7}},
    "leaf_rows_200": {"head_params": {"min_data_in_leaf": 200}},
    "leaves_15_leaf_rows_200": {"head_params": {"num_leaves": 15, "min_data_in_leaf": 200}},
    # the training cutoffs: six 14 days apart (the latest 70 days), or eleven (150 days,
    # as today's six 30 days apart, with twice the rows)
    "spacing_14": {"cutoff_spacing_days": 14},
    "spacing_14_cutoffs_11": {"cutoff_spacing_days": 14, "training_cutoffs": 11},
}
# vars that change only the training: a setting of these alone reuses the built SQL
TRAINING_ONLY = {"head_params", "max_boost_rounds"}
TOLERANCE = 0.002


def judge_settings(
    name: str, *, raw: Path, events: list[Path], end: dt.date, horizon_days: int, work: Path,
    settings: dict[str, dict[str, object]],
) -> dict[str, object]:  # fmt: skip
    """The shop built and judged at each setting: the model's row of the zoo table, its
    status and trees. The first setting builds into an emptied warehouse, and so does
    one that changes more than the training (``TRAINING_ONLY``)."""
    judged: dict[str, dict[str, object]] = {}
    found: dict[str, object] = {"shop": name, "settings": judged}
    for number, (setting, extra_vars) in enumerate(settings.items()):
        started = time.monotonic()
        fresh = number == 0 or not set(extra_vars) <= TRAINING_ONLY
        # a registry of its own: the setting's model scores whatever its status, as on a
        # new shop, never an earlier setting's accepted one
        registry = {"artifacts_path": str(work / f"artifacts-{setting}")}
        shop = zoo.run_shop(
            name, raw=raw, events=events, end=end, horizon_days=horizon_days, work=work,
            extra_vars={**extra_vars, **registry}, with_demand=False, fresh=fresh,
        )  # fmt: skip
        if "rows" not in shop:
            raise RuntimeError(f"{name} at {setting}: {shop.get('error')}")
        judged[setting] = {
            **{metric: shop["rows"][holdout.MODEL][metric] for metric in holdout.COLUMNS},
            "model_status": shop["model_status"],
            "scored_by": scoring_method(work),
            "trees": tree_cap.trees(work),
            "seconds": time.monotonic() - started,
        }
        found["users"], found["as_of"] = shop["users"], shop["as_of"]
    return found


def scoring_method(work: Path) -> str:
    """``ml_models.scoring_method`` of the model that scored ``work``'s warehouse."""
    with duckdb.connect(str(Warehouse(work).path), read_only=True) as connection:
        ((method,),) = connection.sql(
            "select scoring_method from ml.ml_models where is_active"
        ).fetchall()
    return str(method)


def score(row: dict) -> float:
    return (row["normalized_gini"] + row["auc"]) / 2


def no_worse(shop: dict, setting: str) -> bool:
    base, row = shop["settings"][DEFAULTS], shop["settings"][setting]
    return all(row[metric] >= base[metric] - TOLERANCE for metric in holdout.GATING)


def mean_score(shops: list[dict], setting: str) -> float:
    return sum(score(shop["settings"][setting]) for shop in shops) / len(shops)


def chosen(shops: list[dict], settings: list[str]) -> str:
    """The setting with the best mean score among those no worse than the defaults by
    more than ``TOLERANCE`` on any shop; the defaults win a tie."""
    eligible = [s for s in settings if all(no_worse(shop, s) for shop in shops)]
    return max(eligible, key=lambda s: (mean_score(shops, s), s == DEFAULTS))


def knobs(defaults: dict) -> str:
    """The default knobs as the card of a run shows them (num_leaves None: by the rows)."""
    return ", ".join(
        f"{name} {'by the training rows' if value is None else value}"
        for name, value in defaults.items()
    )


def render(result: dict) -> str:
    settings = list(result["settings"])
    if result.get("runs"):  # shops judged by runs side by side, joined by --resume
        ran = "; ".join(
            f"`{run['command']}` at {run['commit']} ({run['shops']}, {run['seconds']:,} s)"
            for run in result["runs"]
        )
        how = (
            f"{ran}, side by side on {result['machine']['cpus']} CPUs, joined by "
            f"`{result['command']}` at {result['commit']}"
        )
    else:
        how = (
            f"`{result['command']}` at {result['commit']}; {result['machine']['cpus']} CPUs, "
            f"{result['seconds']:.0f} s in all, load average at the end "
            f"{result['load_average']:.1f}"
        )
    lines = [f"# Training's defaults by the rule, {result['date']}", "", how, ""]
    lines += [
        "What scored each shop, judged on its held-out horizon (every scored user), with "
        "each setting's dbt vars (`head_params`: both heads' knobs; the rest of "
        f"`train.HeadParams`: {knobs(result['defaults'])}). Trees: those each head of the "
        "scoring "
        f"model grew. No worse: normalized Gini and AUC both at least the defaults' less "
        f"{TOLERANCE}.",
        "",
        "| shop | setting | normalized Gini | AUC | Spearman | (Gini + AUC) / 2 | what scored "
        "| trees | no worse | build s |",
        "|---|---|---:|---:|---:|---:|---|---|---|---:|",
    ]
    for shop in result["shops"]:
        for setting in settings:
            row = shop["settings"][setting]
            grown = " / ".join(str(n) for n in row["trees"].values()) or "none"
            mark = "" if setting == DEFAULTS else ("yes" if no_worse(shop, setting) else "no")
            lines.append(
                f"| {shop['shop']} | {setting} | {row['normalized_gini']:.4f} "
                f"| {row['auc']:.4f} | {row['spearman']:.4f} | {score(row):.4f} "
                f"| {row['scored_by']} ({row['model_status']}) | {grown} | {mark} "
                f"| {row['seconds']:.0f} |"
            )
    lines += [
        "",
        "| setting | dbt vars | mean (Gini + AUC) / 2 over the shops | no worse on every shop |",
        "|---|---|---:|---|",
    ]
    for setting in settings:
        every = all(no_worse(shop, setting) for shop in result["shops"])
        lines.append(
            f"| {setting} | `{json.dumps(result['settings'][setting])}` "
            f"| {mean_score(result['shops'], setting):.4f} "
            f"| {'' if setting == DEFAULTS else ('yes' if every else 'no')} |"
        )
    lines += ["", f"**The rule picks {result['chosen']}.**", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--users", type=int, default=2_000, help="users of each preset's shop")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--presets", nargs="*", choices=list(PRESETS), default=list(PRESETS))
    parser.add_argument("--cdnow", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--medium", action=argparse.BooleanOptionalAction, default=False,
        help=f"a medium shop ({USERS[tree_cap.MEDIUM]:,} users x {DAYS} days)",
    )  # fmt: skip
    parser.add_argument("--work", type=Path, default=REPO / "data" / "training-defaults")
    parser.add_argument("--cache", type=Path, default=REPO / "data" / "cdnow")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--resume", action="store_true", help="keep the shops a failed run in --work judged"
    )
    args = parser.parse_args(argv)
    settings = {name: SETTINGS[name] for name in [DEFAULTS, *args.settings]}
    started = time.monotonic()
    shops, judged = tree_cap.kept_shops(
        args.work, resume=args.resume, matches=lambda shop: list(shop["settings"]) == list(settings)
    )
    done = {shop["shop"] for shop in shops}
    for shop in tree_cap.shops_to_judge(
        args.work, presets=tuple(args.presets), users=args.users, seed=args.seed,
        cache=args.cache if args.cdnow else None, medium=args.medium, done=done,
    ):  # fmt: skip
        judged(judge_settings(**shop, settings=settings))
    result = {
        "date": dt.date.today().isoformat(),
        "command": shlex.join(
            ["python", "bench/training_defaults.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "commit": holdout.commit(),
        "settings": settings,
        "defaults": {k: v for k, v in vars(HeadParams()).items()},
        "tolerance": TOLERANCE,
        "seconds": time.monotonic() - started,
        "load_average": os.getloadavg()[0],
        "machine": machine(),
        "shops": shops,
    }
    result["chosen"] = chosen(shops, list(settings))
    text = render(result)
    print(text)
    write_result(args.out, f"{result['date']}-training-defaults", result, text)
    return result


if __name__ == "__main__":
    main()
