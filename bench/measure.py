"""What the benchmarks share: run a command and measure its wall time and the peak memory
of its whole process tree, run dbt into a warehouse of the benchmark's own, and read
per-model timings from dbt's ``run_results.json``.

The machine's 1-minute load average at the end of each command is recorded with it: on
a shared machine, figures taken under a load above its CPU count are inflated.

Peak memory is sampled from ``/proc`` every ``POLL_SECONDS``: the largest sum of
``VmRSS`` over the command's process tree at any sample, or the largest single
process's ``VmHWM`` (the kernel's exact high-water mark), whichever is larger. The
samples are kept (``Measured.samples``), so that a part of a long command, such as one
dbt node of a whole build, has a peak of its own. Linux only, no dependencies.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POLL_SECONDS = 0.05
T = TypeVar("T")


def best_time(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """The best of ``repeat`` timed calls of ``fn`` after one warm-up, and its result."""
    out = fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


@dataclass(frozen=True)
class Sample:
    """The process tree's memory at one moment, and the machine's load then."""

    at: float  # seconds since the epoch, as dbt's run_results.json times its nodes
    tree_rss_bytes: int
    load_average: float


@dataclass(frozen=True)
class Measured:
    """One command: how long it took, its peak memory, where its output went."""

    command: tuple[str, ...]
    wall_seconds: float
    peak_rss_bytes: int
    returncode: int
    log: Path
    load_average: float  # 1-minute load average when the command ended (others' work too)
    samples: tuple[Sample, ...] = ()

    @property
    def peak_rss_gib(self) -> float:
        return self.peak_rss_bytes / 2**30


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _tree(root: int) -> list[int]:
    """``root`` and every process descending from it."""
    pids, pending = [], [root]
    while pending:
        pid = pending.pop()
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return pids


@dataclass
class _Peak:
    tree_rss_kib: int = 0
    process_hwm_kib: int = 0
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def watch(self, root: int) -> None:
        while not self.stop.is_set():
            pids = _tree(root)
            rss_kib = sum(_status_kib(p, "VmRSS:") for p in pids)
            self.samples.append(Sample(time.time(), rss_kib * 1024, os.getloadavg()[0]))
            self.tree_rss_kib = max(self.tree_rss_kib, rss_kib)
            self.process_hwm_kib = max(
                [self.process_hwm_kib, *(_status_kib(p, "VmHWM:") for p in pids)]
            )
            self.stop.wait(POLL_SECONDS)


def measure(
    command: list[str], *, log: Path, cwd: Path = REPO, env: dict[str, str] | None = None
) -> Measured:
    """Run ``command`` to completion, its output to ``log``, sampling its memory."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        peak = _Peak()
        watcher = threading.Thread(target=peak.watch, args=(process.pid,), daemon=True)
        watcher.start()
        returncode = process.wait()
        wall = time.perf_counter() - start
        peak.stop.set()
        watcher.join()
    return Measured(
        command=tuple(command),
        wall_seconds=wall,
        peak_rss_bytes=max(peak.tree_rss_kib, peak.process_hwm_kib) * 1024,
        returncode=returncode,
        log=log,
        load_average=os.getloadavg()[0],
        samples=tuple(peak.samples),
    )


@dataclass(frozen=True)
class Warehouse:
    """A dbt target of the benchmark's own: warehouse file, artifacts, target and logs."""

    work: Path
    threads: int = 2
    memory_limit: str = "8GB"

    @property
    def path(self) -> Path:
        return self.work / "warehouse.duckdb"

    @property
    def artifacts(self) -> Path:
        return self.work / "artifacts"

    @property
    def target(self) -> Path:
        return self.work / "target"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DO_NOT_TRACK": "1",
            "DBT_PROFILES_DIR": str(REPO),
            "PURCHASING_POWER_DB": str(self.path),
            "PURCHASING_POWER_THREADS": str(self.threads),
            "PURCHASING_POWER_MEMORY_LIMIT": self.memory_limit,
        }

    def dbt(self, *args: str, vars: dict, log: Path) -> Measured:
        """``dbt <args>`` from the repo root into this warehouse; raises if dbt fails."""
        command = [
            str(BIN / "dbt"), *args,
            "--vars", json.dumps({"artifacts_path": str(self.artifacts), **vars}),
            "--target-path", str(self.target),
            "--log-path", str(self.work / "logs"),
            "--no-use-colors",
        ]  # fmt: skip
        measured = measure(command, log=log, env=self.env())
        if measured.returncode != 0:
            tail = "\n".join(log.read_text().splitlines()[-40:])
            raise RuntimeError(f"dbt {' '.join(args)} failed (log: {log}):\n{tail}")
        return measured

    def _run_results(self) -> dict:
        return json.loads((self.target / "run_results.json").read_text())

    def model_seconds(self) -> dict[str, float]:
        """Execution time of each model of the last dbt command, by model name."""
        return self.node_seconds("model")

    def node_seconds(self, *resource_types: str) -> dict[str, float]:
        """Execution time of each node of the last dbt command whose resource type (the
        first part of its ``unique_id``: model, test, unit_test, ...) is one of these, by
        name: a data test's without the hash its ``unique_id`` ends in, a unit test's after
        its model's (two models may have unit tests of the same name)."""
        seconds = {}
        for result in self._run_results()["results"]:
            kind, _project, *parts = result["unique_id"].split(".")
            if kind in resource_types:
                name = {"test": parts[0], "unit_test": "::".join(parts)}.get(kind, parts[-1])
                seconds[name] = float(result["execution_time"])
        return seconds

    def node_spans(self) -> dict[str, tuple[float, float, float]]:
        """Each node of the last dbt command by ``unique_id``: when it started and ended
        (seconds since the epoch, its compiling to the end of its executing) and its
        execution time. A node that never ran (skipped) has none."""
        spans = {}
        for result in self._run_results()["results"]:
            times = [
                dt.datetime.fromisoformat(timing[key].replace("Z", "+00:00")).timestamp()
                for timing in result["timing"]
                for key in ("started_at", "completed_at")
                if timing.get(key)
            ]
            if times:
                spans[result["unique_id"]] = (
                    min(times),
                    max(times),
                    float(result["execution_time"]),
                )
        return spans

    def elapsed_seconds(self) -> float:
        """``elapsed_time`` of the last command's ``run_results.json``: its nodes and what
        dbt runs between them, without starting Python and parsing the project."""
        return float(self._run_results()["elapsed_time"])


def generate(out: Path, *, users: int, days: int, seed: int, log: Path) -> Measured:
    """``purchasing-power generate`` as a measured command."""
    command = [
        str(BIN / "purchasing-power"), "generate", "--out", str(out),
        "--users", str(users), "--days", str(days), "--seed", str(seed),
    ]  # fmt: skip
    measured = measure(command, log=log)
    if measured.returncode != 0:
        raise RuntimeError(f"generate failed (log: {log}):\n{log.read_text()[-2000:]}")
    return measured


def count_rows(parquet: Path) -> int:
    import duckdb

    with duckdb.connect() as connection:
        return int(connection.execute(f"select count(*) from '{parquet}'").fetchone()[0])


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    memory_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 2**20, 1),
        "python": sys.version.split()[0],
    }


def write_result(out: Path, name: str, result: dict, table: str) -> Path:
    """Write ``result`` as ``<out>/<name>.json`` and its ``table`` as ``.md`` and print
    where. A second run with the same name keeps the first (either file of it: a run's
    .md was once kept without its .json, and the next run wrote over it): it is written
    as ``<name>-2``, ``<name>-3`` and so on. Returns the path without its suffix."""
    out.mkdir(parents=True, exist_ok=True)
    stem, run = out / name, 1
    while any(stem.with_suffix(suffix).exists() for suffix in (".json", ".md")):
        run += 1
        stem = out / f"{name}-{run}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    stem.with_suffix(".md").write_text(table)
    print(f"wrote {stem}.json and {stem}.md")
    return stem
