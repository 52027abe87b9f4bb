"""The default tree cap, chosen by a rule (issue 40, point 3): the smallest
``max_boost_rounds`` whose normalized Gini and AUC are within ``TOLERANCE`` of the
uncapped model on every shop of the zoo (every generator preset and CDNOW) and on a
medium shop.

A plain script (not a test). Each shop is built and judged on its held-out horizon as
``bench/zoo.py`` does it (``zoo.run_shop``, no demand build): first uncapped
(``max_boost_rounds`` = ``UNCAPPED``: early stopping alone ends each head), then at each
cap into the same warehouse (its SQL already built, so only the training differs), every
build with ``retrain: true``. It reads the trees the scoring model's heads grew (its
card's ``best_iterations``), prints one table and the cap the rule picks.

    .venv/bin/python bench/tree_cap.py                       # the zoo and a medium shop
    .venv/bin/python bench/tree_cap.py --no-medium --caps 100 300

Writes ``bench/results/<date>-tree-cap.md`` (and .json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb

import holdout
import zoo
from cdnow import data as cdnow
from measure import REPO, Warehouse, machine, write_result
from purchasing_power.generate import PRESETS, GeneratorSettings
from run import DAYS, USERS, generate_in_parts

UNCAPPED = 100_000
CAPS = (100, 200, 300, 500, 1000)
TOLERANCE = 0.001
MEDIUM = "medium"


def trees(work: Path) -> dict[str, int]:
    """The rounds each head of the model that scored ``work``'s warehouse grew (none for
    a baseline or the BTYD fallback)."""
    with duckdb.connect(str(Warehouse(work).path), read_only=True) as connection:
        (path,) = connection.execute(
            "select artifact_path from ml.ml_models where is_active"
        ).fetchone() or (None,)
    card = json.loads((Path(path) / "card.json").read_text())
    return {head: int(rounds) for head, rounds in (card.get("best_iterations") or {}).items()}


def judge_caps(
    name: str, *, raw: Path, events: list[Path], end: dt.date, horizon_days: int, work: Path,
    caps: tuple[int, ...],
) -> dict[str, object]:  # fmt: skip
    """The shop built and judged uncapped, then at each cap: the model's row of the zoo
    table, its status and trees, per cap."""
    judged: dict[str, dict[str, object]] = {}
    found: dict[str, object] = {"shop": name, "caps": judged}
    for number, cap in enumerate((UNCAPPED, *sorted(caps, reverse=True))):
        started = time.monotonic()
        # a registry of its own: the cap's model scores whatever its status, never an
        # earlier cap's accepted one
        shop = zoo.run_shop(
            name, raw=raw, events=events, end=end, horizon_days=horizon_days, work=work,
            extra_vars={"max_boost_rounds": cap, "artifacts_path": str(work / f"artifacts-{cap}")},
            with_demand=False, fresh=number == 0,
        )  # fmt: skip
        if "rows" not in shop:
            raise RuntimeError(f"{name} at max_boost_rounds {cap}: {shop.get('error')}")
        judged[str(cap)] = {
            **{metric: shop["rows"][holdout.MODEL][metric] for metric in holdout.COLUMNS},
            "model_status": shop["model_status"],
            "trees": trees(work),
            "seconds": time.monotonic() - started,
        }
        found["users"], found["as_of"] = shop["users"], shop["as_of"]
    return found


def within(shop: dict, cap: int) -> bool:
    uncapped, capped = shop["caps"][str(UNCAPPED)], shop["caps"][str(cap)]
    return all(abs(capped[metric] - uncapped[metric]) <= TOLERANCE for metric in holdout.GATING)


def chosen(shops: list[dict], caps: tuple[int, ...]) -> int | None:
    """The smallest cap within ``TOLERANCE`` of uncapped on every shop."""
    return next((cap for cap in sorted(caps) if all(within(shop, cap) for shop in shops)), None)


def kept_shops(
    work: Path, *, resume: bool, matches: Callable[[dict], bool]
) -> tuple[list[dict], Callable[[dict], None]]:
    """The shops judged so far, and how to add one. Each is saved to ``work/judged.json``
    as it is judged, so that a failed run resumes: with ``resume``, the shops saved there
    that ``matches`` keeps (judged with the same caps or settings)."""
    partial = work / "judged.json"
    saved = json.loads(partial.read_text()) if resume and partial.exists() else []
    shops = [shop for shop in saved if matches(shop)]

    def judged(shop: dict) -> None:
        shops.append(shop)
        work.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(shops, indent=2) + "\n")

    return shops, judged


def shops_to_judge(
    work: Path, *, presets: tuple[str, ...], users: int, seed: int, cache: Path | None,
    medium: bool, done: set[str],
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Each shop a rule judges, not in ``done``, as ``judge_caps``' keyword arguments:
    every preset of the zoo (``users`` each), CDNOW (from ``cache``; none: left out) and,
    where asked, a medium shop, written or generated as its turn comes."""
    written = zoo.write_zoo(
        work, users=users, seed=seed, presets=tuple(p for p in presets if p not in done)
    )
    start = GeneratorSettings().start_date
    for preset, data in written.items():
        yield {
            "name": preset, "raw": data.out_dir, "events": [data.events_path],
            "end": start + dt.timedelta(days=PRESETS[preset].days),
            "horizon_days": zoo.HORIZON_DAYS.get(preset, zoo.DEFAULT_HORIZON_DAYS),
            "work": work / preset / "build",
        }  # fmt: skip
    if cache is not None and zoo.CDNOW not in done:
        master, _ = cdnow.fetch(cache)
        raw = work / zoo.CDNOW / "raw"
        yield {
            "name": zoo.CDNOW, "raw": raw,
            "events": [cdnow.write_events(cdnow.read_master(master), raw)],
            "end": cdnow.AS_OF + dt.timedelta(days=cdnow.HOLDOUT_DAYS),
            "horizon_days": cdnow.HOLDOUT_DAYS, "work": work / zoo.CDNOW / "build",
        }  # fmt: skip
    if medium and MEDIUM not in done:
        raw = work / MEDIUM / "raw"
        # one part of users: the generator writes raw/events.parquet
        if not (raw / "events.parquet").exists():
            generate_in_parts(raw, users=USERS[MEDIUM], days=DAYS, seed=seed,
                              log=work / MEDIUM / "generate.log")  # fmt: skip
        yield {
            "name": MEDIUM, "raw": raw, "events": [raw / "events.parquet"],
            "end": start + dt.timedelta(days=DAYS), "horizon_days": zoo.DEFAULT_HORIZON_DAYS,
            "work": work / MEDIUM / "build",
        }  # fmt: skip


def render(result: dict) -> str:
    caps = [UNCAPPED, *sorted(result["caps"], reverse=True)]
    lines = [
        f"# The tree cap by the rule, {result['date']}",
        "",
        f"`{result['command']}` at {result['commit']}; {result['machine']['cpus']} CPUs, "
        f"{result['seconds']:.0f} s in all, load average at the end {result['load_average']:.1f}",
        "",
        "The model that scored each shop, judged on its held-out horizon (every scored "
        f"user), at each `max_boost_rounds` ({UNCAPPED:,}: uncapped, early stopping alone). "
        "Trees: those each head of the scoring model grew (purchase / spend, or the one "
        f"head). Within: normalized Gini and AUC both within {TOLERANCE} of uncapped.",
        "",
        "| shop | max_boost_rounds | normalized Gini | AUC | Spearman | status | trees "
        "| within | build s |",
        "|---|---:|---:|---:|---:|---|---|---|---:|",
    ]
    for shop in result["shops"]:
        for cap in caps:
            row = shop["caps"][str(cap)]
            grown = " / ".join(str(n) for n in row["trees"].values()) or "none"
            mark = "" if cap == UNCAPPED else ("yes" if within(shop, cap) else "no")
            lines.append(
                f"| {shop['shop']} | {cap:,} | {row['normalized_gini']:.4f} | {row['auc']:.4f} "
                f"| {row['spearman']:.4f} | {row['model_status']} | {grown} | {mark} "
                f"| {row['seconds']:.0f} |"
            )
    pick = result["chosen"]
    lines += [
        "",
        f"**The rule picks {pick:,}**: the smallest cap within {TOLERANCE} on every shop."
        if pick is not None
        else f"**No cap of {result['caps']} is within {TOLERANCE} on every shop.**",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caps", type=int, nargs="+", default=list(CAPS))
    parser.add_argument("--users", type=int, default=2_000, help="users of each preset's shop")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=list(PRESETS))
    parser.add_argument("--cdnow", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--medium", action=argparse.BooleanOptionalAction, default=True,
                        help=f"a medium shop ({USERS[MEDIUM]:,} users x {DAYS} days)")  # fmt: skip
    parser.add_argument("--work", type=Path, default=REPO / "data" / "tree-cap")
    parser.add_argument("--cache", type=Path, default=REPO / "data" / "cdnow")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--resume", action="store_true", help="keep the shops a failed run in --work judged"
    )
    args = parser.parse_args(argv)
    caps = tuple(sorted(set(args.caps)))
    started = time.monotonic()
    shops, judged = kept_shops(
        args.work, resume=args.resume,
        matches=lambda shop: sorted(map(int, shop["caps"])) == sorted((UNCAPPED, *caps)),
    )  # fmt: skip
    done = {shop["shop"] for shop in shops}
    for shop in shops_to_judge(
        args.work, presets=tuple(args.presets), users=args.users, seed=args.seed,
        cache=args.cache if args.cdnow else None, medium=args.medium, done=done,
    ):  # fmt: skip
        judged(judge_caps(**shop, caps=caps))
    result = {
        "date": dt.date.today().isoformat(),
        "command": shlex.join(
            ["python", "bench/tree_cap.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "commit": holdout.commit(),
        "caps": list(caps),
        "uncapped": UNCAPPED,
        "tolerance": TOLERANCE,
        "seconds": time.monotonic() - started,
        "load_average": os.getloadavg()[0],
        "machine": machine(),
        "shops": shops,
        "chosen": chosen(shops, caps),
    }
    text = render(result)
    print(text)
    write_result(args.out, f"{result['date']}-tree-cap", result, text)
    return result


if __name__ == "__main__":
    main()
