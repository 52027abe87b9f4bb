"""The scoring API under load: latency and throughput of single lookups and batches.

A plain script (not a test). For each ``--users`` it publishes a synthetic BI copy with
the real publication code (``synthetic_publication.py``: the marts' real columns,
``--runs`` days of history), starts ``purchasing-power serve`` on it in a process of its
own, and drives it on the same machine with keep-alive HTTP/1.1 connections: single
lookups (``GET /v1/users/{id}/score``, random users, with reasons), batches of 100
(``POST /v1/scores/batch``) and histories (``GET /v1/users/{id}/history``, the API's
default limit of 100 unless ``--history-limit``) at 1, 16 and 64 concurrent clients,
each client waiting for its answer before it sends the next request. The load generator
is ``wrk`` (C, one thread; ``apt-get install wrk``) where it is installed, else a small
client in this process on uvloop; the table says which. wrk costs the machine a fraction of the
Python client's CPU per request, which matters when the load generator shares the
server's two cores. It reports p50, p95 and p99 latency, requests a second, the errors
(any status but 200; the Python client also checks each answer names its
publication), the server's CPU per request (user + system time over the run: the
figure a loaded machine does not change), its memory (VmRSS) against the number of
users, the time to load a publication, and the machine's load average over each run.

    python bench/bench_api.py                          # 60,000 and 625,000 users
    python bench/bench_api.py --users 2000 --seconds 2 # a quick look
    python bench/bench_api.py --workers 2              # two server processes (serve_workers.py)
    python bench/bench_api.py --users 60000 --runs 365 --kinds history   # a year of history

Writes ``bench/results/<date>-api.json`` and ``.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import uvloop

from measure import REPO, machine, write_result
from purchasing_power.api.keys import SCOPES, add_key
from synthetic_publication import publish_synthetic

RESULTS = REPO / "bench" / "results"
CONCURRENCY = (1, 16, 64)
KINDS = ("single", "batch", "history")
BATCH = 100
HISTORY_LIMIT = 100  # the API's default
WRK_SCRIPT = Path(__file__).with_name("bench_api_wrk.lua")
WORKERS_SCRIPT = Path(__file__).with_name("serve_workers.py")
GENERATORS = {"wrk": "wrk (one thread)", "python": "the Python client (uvloop)"}


@dataclass(frozen=True)
class Run:
    users: int
    kind: str  # single, batch or history
    clients: int
    requests: int
    errors: int
    seconds: float
    per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_cpu_ms: float  # the server's CPU time (user + system) per request
    load_average: float  # 1-minute, at the end of the run


@dataclass(frozen=True)
class Driven:
    """What a load generator saw over one run."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Footprint:
    users: int
    history_rows: int
    rss_mib_idle: float  # the server with the publication loaded, before any request
    rss_mib_peak_loading: float  # VmHWM then: the most it held while it loaded
    rss_mib_after: float  # after the runs
    load_seconds: float  # publishing to ready: the server's load of the snapshot


class Client:
    """One keep-alive HTTP/1.1 connection; a request waits for the last answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def _get(path: str, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


def _post(path: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def _drive_python(
    port: int, token: str, *, users: int, kind: str, clients: int, seconds: float, seed: int,
    history_limit: int = HISTORY_LIMIT,
) -> tuple[list[float], int, float]:  # fmt: skip
    generator = random.Random(seed)

    def request() -> bytes:
        if kind == "single":
            return _get(f"/v1/users/u{generator.randrange(users):07d}/score", token)
        if kind == "history":
            user = f"u{generator.randrange(users):07d}"
            return _get(f"/v1/users/{user}/history?limit={history_limit}", token)
        ids = [f"u{generator.randrange(users):07d}" for _ in range(BATCH)]
        return _post("/v1/scores/batch", token, json.dumps({"user_ids": ids}).encode())

    opened = [await Client.open(port) for _ in range(clients)]
    latencies: list[float] = []
    errors = 0
    warm_until = time.perf_counter() + min(1.0, seconds / 4)
    stop = warm_until + seconds

    async def loop(client: Client) -> None:
        nonlocal errors
        while (now := time.perf_counter()) < stop:
            raw = request()
            start = time.perf_counter()
            status, body = await client.request(raw)
            took = time.perf_counter() - start
            if now >= warm_until:
                latencies.append(took)
                errors += status != 200 or b'"publication"' not in body

    await asyncio.gather(*(loop(client) for client in opened))
    for client in opened:
        client.close()
    return latencies, errors, stop - warm_until


def drive(
    generator: str, port: int, token: str, *, users: int, kind: str, clients: int,
    seconds: float, seed: int, history_limit: int = HISTORY_LIMIT,
) -> Driven:  # fmt: skip
    """One run of ``clients`` closed-loop clients for ``seconds`` (after a warm-up)."""
    if generator == "python":
        latencies, errors, elapsed = uvloop.run(
            _drive_python(port, token, users=users, kind=kind, clients=clients,
                          seconds=seconds, seed=seed, history_limit=history_limit)
        )  # fmt: skip
        ordered = sorted(latencies)
        return Driven(
            requests=len(ordered),
            errors=errors,
            seconds=elapsed,
            p50_ms=statistics.median(ordered) * 1000,
            p95_ms=_percentile(ordered, 0.95),
            p99_ms=_percentile(ordered, 0.99),
        )
    return _drive_wrk(port, token, users=users, kind=kind, clients=clients, seconds=seconds,
                      seed=seed, history_limit=history_limit)  # fmt: skip


def _wrk(port: int, token: str, *, users: int, kind: str, clients: int, seconds: int,
         seed: int, history_limit: int) -> dict:  # fmt: skip
    command = [
        "wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}",
        "--", token, str(users), kind, str(BATCH), str(seed), str(history_limit),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _drive_wrk(port: int, token: str, *, users: int, kind: str, clients: int, seconds: float,
               seed: int, history_limit: int) -> Driven:  # fmt: skip
    """wrk counts whole seconds: a warm-up of one, then the run, rounded up."""
    options = {"users": users, "kind": kind, "clients": clients, "history_limit": history_limit}
    _wrk(port, token, **options, seconds=1, seed=seed + 1000)
    seen = _wrk(port, token, **options, seconds=max(1, math.ceil(seconds)), seed=seed)
    return Driven(
        requests=seen["requests"],
        errors=seen["non_2xx"] + seen["socket_errors"],
        seconds=seen["microseconds"] / 1e6,
        p50_ms=seen["p50_us"] / 1000,
        p95_ms=seen["p95_us"] / 1000,
        p99_ms=seen["p99_us"] / 1000,
    )


def load_generator(choice: str) -> str:
    """``wrk`` where asked for or, with ``auto``, where it is installed; else ``python``."""
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if choice == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--client wrk: wrk is not installed (apt-get install wrk)")
    return choice


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory now (VmRSS), or its high-water mark (VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _wait_ready(port: int, token: str, *, timeout: float) -> None:
    async def ready() -> bool:
        try:
            client = await Client.open(port)
        except OSError:
            return False
        try:
            status, _ = await client.request(_get("/readyz", token))
            return status == 200
        finally:
            client.close()

    deadline = time.monotonic() + timeout
    while not asyncio.run(ready()):
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not become ready")
        time.sleep(0.2)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(
    database: Path, keys_file: Path, port: int, *, workers: int
) -> tuple[subprocess.Popen, list[int]]:
    """``purchasing-power serve`` (one process), or ``serve_workers.py`` with several;
    and the ids of the processes that serve."""
    options = ["--bi-db", str(database), "--keys-file", str(keys_file), "--port", str(port)]
    if workers == 1:
        command = [str(Path(sys.executable).with_name("purchasing-power")), "serve", *options,
                   "--log-level", "warning"]  # fmt: skip
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return server, [server.pid]
    command = [sys.executable, str(WORKERS_SCRIPT), *options, "--workers", str(workers)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)  # fmt: skip
    return server, [int(pid) for pid in server.stdout.readline().split()]


def bench_users(
    users: int, *, runs: int, seconds: float, work: Path, concurrency: tuple[int, ...],
    generator: str = "python", workers: int = 1, kinds: tuple[str, ...] = KINDS,
    history_limit: int = HISTORY_LIMIT,
) -> tuple[list[Run], Footprint]:  # fmt: skip
    database = work / f"users-{users}" / "purchasing_power_bi.duckdb"
    print(f"publishing {users:,} users x {runs} days", flush=True)
    publish_synthetic(database, users=users, runs=runs)
    keys_file = work / f"users-{users}" / "api_keys.json"
    token = add_key(keys_file, name="bench", scopes=SCOPES, rate_per_second=1e9, burst=10**9).token
    port = _free_port()
    start = time.perf_counter()
    server, pids = _start_server(database, keys_file, port, workers=workers)
    try:
        _wait_ready(port, token, timeout=600)
        load_seconds = time.perf_counter() - start
        idle = sum(_rss_mib(pid) for pid in pids)
        peak = sum(_rss_mib(pid, "VmHWM") for pid in pids)
        results = []
        for kind in kinds:
            for clients in concurrency:
                cpu_before = sum(_cpu_seconds(pid) for pid in pids)
                seen = drive(generator, port, token, users=users, kind=kind, clients=clients,
                             seconds=seconds, seed=clients,
                             history_limit=history_limit)  # fmt: skip
                cpu = sum(_cpu_seconds(pid) for pid in pids) - cpu_before
                elapsed = round(seen.seconds, 3)
                run = Run(
                    users=users,
                    kind=kind,
                    clients=clients,
                    requests=seen.requests,
                    errors=seen.errors,
                    seconds=elapsed,
                    per_second=round(seen.requests / elapsed, 1),
                    p50_ms=round(seen.p50_ms, 2),
                    p95_ms=round(seen.p95_ms, 2),
                    p99_ms=round(seen.p99_ms, 2),
                    # the warm-up's requests are not counted: an upper bound, by a little
                    server_cpu_ms=round(cpu / seen.requests * 1000, 3),
                    load_average=round(os.getloadavg()[0], 2),
                )
                print(
                    f"  {kind:<7} {clients:>3} clients: {run.per_second:8.1f}/s  p50"
                    f" {run.p50_ms:6.2f} p95 {run.p95_ms:6.2f} p99 {run.p99_ms:6.2f} ms  cpu"
                    f" {run.server_cpu_ms:.3f} ms  errors {run.errors}  load {run.load_average}",
                    flush=True,
                )
                results.append(run)
        footprint = Footprint(
            users=users,
            history_rows=users * runs,
            rss_mib_idle=round(idle, 1),
            rss_mib_peak_loading=round(peak, 1),
            rss_mib_after=round(sum(_rss_mib(pid) for pid in pids), 1),
            load_seconds=round(load_seconds, 2),
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
        if server.stdout is not None:
            server.stdout.close()
    return results, footprint


def render(result: dict) -> str:
    workers = result.get("workers", 1)
    generator = result.get("load_generator", "python")
    options = f" --workers {workers}" if workers > 1 else ""
    clients = result.get("clients", list(CONCURRENCY))
    if list(clients) != list(CONCURRENCY):
        options += f" --clients {' '.join(str(number) for number in clients)}"
    kinds = result.get("kinds", list(KINDS))  # a result from before --kinds: its own line
    if list(kinds) != list(KINDS):
        options += f" --kinds {' '.join(kinds)}"
    history_limit = result.get("history_limit", HISTORY_LIMIT)
    if history_limit != HISTORY_LIMIT:
        options += f" --history-limit {history_limit}"
    labels = {"single": "single lookup", "batch": f"batch of {BATCH}",
              "history": f"history (limit {history_limit})"}  # fmt: skip
    lines = [
        f"`bench/bench_api.py --users {' '.join(str(u) for u in result['users'])} "
        f"--runs {result['runs']} --seconds {result['seconds']:g} --client {generator}"
        f"{options}`: {result['date']}, {result['machine']['cpus']} CPUs / "
        f"{result['machine']['memory_gib']} GiB; load generator "
        f"{GENERATORS.get(generator, generator)} on the same machine; the server "
        f"{'one process' if workers == 1 else f'{workers} processes on one socket'}; "
        f"1-minute load average {result['load_before']} before",
        "",
        "| users | request | clients | requests/s | p50 ms | p95 ms | p99 ms"
        " | server CPU ms / request | errors | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in result["runs_measured"]:
        lines.append(
            f"| {run['users']:,} | {labels[run['kind']]} | {run['clients']} | "
            f"{run['per_second']:,.0f} | "
            f"{run['p50_ms']:.2f} | {run['p95_ms']:.2f} | {run['p99_ms']:.2f} | "
            f"{run['server_cpu_ms']:.3f} | {run['errors']} | {run['load_average']} |"
        )
    lines += [
        "",
        "| users | history rows | server RSS MiB, loaded | peak while loading | after the runs"
        " | start to ready s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {f['users']:,} | {f['history_rows']:,} | {f['rss_mib_idle']:.0f} | "
        f"{f.get('rss_mib_peak_loading', float('nan')):.0f} | {f['rss_mib_after']:.0f} | "
        f"{f['load_seconds']:.1f} |"
        for f in result["footprints"]
    ]
    if len(result["footprints"]) >= 2:
        small, large = result["footprints"][0], result["footprints"][-1]
        per_user = (
            (large["rss_mib_idle"] - small["rss_mib_idle"])
            * 2**20
            / (large["users"] - small["users"])
        )
        lines += ["", f"Memory per user served, with {result['runs']} days of history (the"
                  f" slope between the sizes): **{per_user:,.0f} bytes**."]  # fmt: skip
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[60_000, 625_000])
    parser.add_argument("--runs", type=int, default=30, help="days of history published")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured per run")
    parser.add_argument("--clients", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument(
        "--client", choices=("auto", "wrk", "python"), default="auto",
        help="the load generator: wrk where installed (auto), else the Python client",
    )  # fmt: skip
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument(
        "--history-limit", type=int, default=HISTORY_LIMIT, help="entries a history asks for"
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--label", default="", help="appended to the result files' name")
    args = parser.parse_args()
    generator = load_generator(args.client)
    print(f"load generator: {GENERATORS[generator]}", flush=True)

    load_before = round(os.getloadavg()[0], 2)
    runs, footprints = [], []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as work:
        for users in args.users:
            measured, footprint = bench_users(
                users, runs=args.runs, seconds=args.seconds, work=Path(work),
                concurrency=tuple(args.clients), generator=generator, workers=args.workers,
                kinds=tuple(args.kinds), history_limit=args.history_limit,
            )  # fmt: skip
            runs += measured
            footprints.append(footprint)
    result = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "users": args.users,
        "runs": args.runs,
        "seconds": args.seconds,
        "load_generator": generator,
        "workers": args.workers,
        "clients": args.clients,
        "kinds": args.kinds,
        "history_limit": args.history_limit,
        "load_before": load_before,
        "runs_measured": [asdict(run) for run in runs],
        "footprints": [asdict(footprint) for footprint in footprints],
    }
    table = render(result)
    print(table)
    name = f"{result['date']}-api" + (f"-workers{args.workers}" if args.workers > 1 else "")
    name += f"-{args.label}" if args.label else ""
    write_result(args.out, name, result, table)


if __name__ == "__main__":
    main()
