"""Where the training step's memory goes, phase by phase.

Runs the steps of ``ml_models``' training (``pipeline.train_from_warehouse``: the same
calls as a build with ``retrain: true``, without scoring) on a built warehouse, samples
the process's resident memory every ``POLL_SECONDS`` and prints the peak and wall time of
each phase: what comes before the split (the registry, the scoring rows), the time split
(reading ``training_examples`` into the feature matrix), fitting both heads, and
registering (export, parity gate, card). The warehouse is opened read-only and the model
is registered in a temporary folder.

    python bench/train_memory.py WAREHOUSE [--memory-limit 5GB] [--threads 2] [--split-only]
        [--json-out F]

``--split-only`` stops once the split is made (a minute or two at large, not a quarter
of an hour).

Linux only (``/proc``). A measurement, not a test: nothing here gates CI.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

import purchasing_power.pipeline as pipeline
from measure import POLL_SECONDS, _status_kib

PHASES = ("time_split", "train_models", "register_models")


def resident_bytes() -> int:
    return _status_kib(os.getpid(), "VmRSS:") * 1024


class Sampler:
    """Resident memory every ``POLL_SECONDS``, on a thread of its own."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), resident_bytes()))
            self._stop.wait(POLL_SECONDS)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float, end: float) -> int:
        return max((rss for at, rss in self.samples if start <= at <= end), default=0)


def marked(function: Callable, name: str, marks: list[tuple[str, float]]) -> Callable:
    def wrapper(*args, **kwargs):
        marks.append((f"{name} starts", time.perf_counter()))
        try:
            return function(*args, **kwargs)
        finally:
            marks.append((f"{name} ends", time.perf_counter()))

    return wrapper


class SplitMade(Exception):
    """Raised in place of fitting under ``--split-only``."""


def stop(*args, **kwargs):
    raise SplitMade


def measure(
    warehouse: Path, *, memory_limit: str, threads: int, split_only: bool = False
) -> dict[str, object]:
    marks: list[tuple[str, float]] = []
    for name in PHASES:
        function = stop if split_only and name == "train_models" else getattr(pipeline, name)
        setattr(pipeline, name, marked(function, name, marks))
    with (
        Sampler() as sampler,
        tempfile.TemporaryDirectory() as artifacts,
        duckdb.connect(str(warehouse), read_only=True) as connection,
    ):
        connection.execute(f"set memory_limit = '{memory_limit}'; set threads = {threads}")
        marks.append(("start", time.perf_counter()))
        try:
            status = pipeline.train_from_warehouse(connection, artifacts_dir=Path(artifacts)).status
        except SplitMade:
            status = "split only"
        marks.append(("end", time.perf_counter()))
    phases = [
        {
            "from": first,
            "to": second,
            "seconds": end - start,
            "peak_rss_gib": sampler.peak(start, end) / 2**30,
        }
        for (first, start), (second, end) in itertools.pairwise(marks)
    ]
    return {
        "warehouse": str(warehouse),
        "memory_limit": memory_limit,
        "threads": threads,
        "model_status": status,
        "phases": phases,
        "peak_rss_gib": max(rss for _, rss in sampler.samples) / 2**30,
        "max_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "seconds": marks[-1][1] - marks[0][1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path, help="a built warehouse (read-only)")
    parser.add_argument("--memory-limit", default="5GB", help="DuckDB memory limit")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    parser.add_argument("--split-only", action="store_true", help="stop once split")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    result = measure(
        args.warehouse,
        memory_limit=args.memory_limit,
        threads=args.threads,
        split_only=args.split_only,
    )
    for phase in result["phases"]:
        print(
            f"{phase['from']:>24} -> {phase['to']:<24} {phase['seconds']:8.1f} s"
            f"  peak {phase['peak_rss_gib']:.2f} GiB"
        )
    print(
        f"process: peak sampled {result['peak_rss_gib']:.2f} GiB, ru_maxrss "
        f"{result['max_rss_gib']:.2f} GiB, {result['seconds']:.1f} s ({result['model_status']})"
    )
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
