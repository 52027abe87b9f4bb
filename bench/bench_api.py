"""The scoring API under load: latency and throughput of single lookups and batches.

A plain script (not a test). For each ``--users`` it publishes a synthetic BI copy with
the real publication code (``synthetic_publication.py``: the marts' real columns,
``--runs`` days of history), starts ``purchasing-power serve`` on it in a process of its
own, and drives it from this process, on the same machine, with a small HTTP/1.1
keep-alive client on uvloop (cheap enough that the server, not the client, is
measured): single lookups (``GET /v1/users/{id}/score``, random users, with reasons)
and batches of 100 (``POST /v1/scores/batch``) at 1, 16 and 64 concurrent clients,
each client waiting for its answer before it sends the next request. It reports p50,
p95 and p99 latency, requests a second, the errors (any status but 200), the server's
memory (VmRSS) against the number of users, the time to load a publication, and the
machine's load average over each run.

    python bench/bench_api.py                          # 60,000 and 625,000 users
    python bench/bench_api.py --users 2000 --seconds 2 # a quick look

Writes ``bench/results/<date>-api.json`` and ``.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from measure import REPO, machine, write_result
from purchasing_power.api.keys import SCOPES, add_key
from synthetic_publication import publish_synthetic

RESULTS = REPO / "bench" / "results"
CONCURRENCY = (1, 16, 64)
BATCH = 100


@dataclass(frozen=True)
class Run:
    users: int
    kind: str  # single or batch
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
class Footprint:
    users: int
    history_rows: int
    rss_mib_idle: float  # the server with the publication loaded, before any request
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


async def _drive(
    port: int, token: str, *, users: int, kind: str, clients: int, seconds: float, seed: int
) -> tuple[list[float], int, float]:
    generator = random.Random(seed)

    def request() -> bytes:
        if kind == "single":
            return _get(f"/v1/users/u{generator.randrange(users):07d}/score", token)
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


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
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


def bench_users(
    users: int, *, runs: int, seconds: float, work: Path, concurrency: tuple[int, ...]
) -> tuple[list[Run], Footprint]:
    database = work / f"users-{users}" / "purchasing_power_bi.duckdb"
    print(f"publishing {users:,} users x {runs} days", flush=True)
    publish_synthetic(database, users=users, runs=runs)
    keys_file = work / f"users-{users}" / "api_keys.json"
    token = add_key(keys_file, name="bench", scopes=SCOPES, rate_per_second=1e9, burst=10**9).token
    port = _free_port()
    command = [
        str(Path(sys.executable).with_name("purchasing-power")), "serve",
        "--bi-db", str(database), "--keys-file", str(keys_file), "--port", str(port),
        "--log-level", "warning",
    ]  # fmt: skip
    start = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(port, token, timeout=600)
        load_seconds = time.perf_counter() - start
        idle = _rss_mib(server.pid)
        results = []
        for kind in ("single", "batch"):
            for clients in concurrency:
                cpu_before = _cpu_seconds(server.pid)
                latencies, errors, elapsed = asyncio.run(
                    _drive(port, token, users=users, kind=kind, clients=clients,
                           seconds=seconds, seed=clients)
                )  # fmt: skip
                cpu = _cpu_seconds(server.pid) - cpu_before
                ordered = sorted(latencies)
                run = Run(
                    users=users,
                    kind=kind,
                    clients=clients,
                    requests=len(ordered),
                    errors=errors,
                    seconds=round(elapsed, 2),
                    per_second=round(len(ordered) / elapsed, 1),
                    p50_ms=round(statistics.median(ordered) * 1000, 2),
                    p95_ms=round(_percentile(ordered, 0.95), 2),
                    p99_ms=round(_percentile(ordered, 0.99), 2),
                    # the warm-up's requests are not counted: an upper bound, by a little
                    server_cpu_ms=round(cpu / len(ordered) * 1000, 3),
                    load_average=round(os.getloadavg()[0], 2),
                )
                print(
                    f"  {kind:<6} {clients:>3} clients: {run.per_second:8.1f}/s  p50"
                    f" {run.p50_ms:6.2f} p95 {run.p95_ms:6.2f} p99 {run.p99_ms:6.2f} ms  cpu"
                    f" {run.server_cpu_ms:.3f} ms  errors {errors}  load {run.load_average}",
                    flush=True,
                )
                results.append(run)
        footprint = Footprint(
            users=users,
            history_rows=users * runs,
            rss_mib_idle=round(idle, 1),
            rss_mib_after=round(_rss_mib(server.pid), 1),
            load_seconds=round(load_seconds, 2),
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
    return results, footprint


def render(result: dict) -> str:
    lines = [
        f"`bench/bench_api.py --users {' '.join(str(u) for u in result['users'])} "
        f"--runs {result['runs']} --seconds {result['seconds']:g}`: {result['date']}, "
        f"{result['machine']['cpus']} CPUs / {result['machine']['memory_gib']} GiB, the load "
        f"generator on the same machine; 1-minute load average {result['load_before']} before",
        "",
        "| users | request | clients | requests/s | p50 ms | p95 ms | p99 ms"
        " | server CPU ms / request | errors | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in result["runs_measured"]:
        kind = "single lookup" if run["kind"] == "single" else f"batch of {BATCH}"
        lines.append(
            f"| {run['users']:,} | {kind} | {run['clients']} | {run['per_second']:,.0f} | "
            f"{run['p50_ms']:.2f} | {run['p95_ms']:.2f} | {run['p99_ms']:.2f} | "
            f"{run['server_cpu_ms']:.3f} | {run['errors']} | {run['load_average']} |"
        )
    lines += [
        "",
        "| users | history rows | server RSS MiB, loaded | after the runs | start to ready s |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {f['users']:,} | {f['history_rows']:,} | {f['rss_mib_idle']:.0f} | "
        f"{f['rss_mib_after']:.0f} | {f['load_seconds']:.1f} |"
        for f in result["footprints"]
    ]
    if len(result["footprints"]) >= 2:
        small, large = result["footprints"][0], result["footprints"][-1]
        per_user = (
            (large["rss_mib_idle"] - small["rss_mib_idle"])
            * 2**20
            / (large["users"] - small["users"])
        )
        lines += ["", f"Memory per user served (the slope between the sizes): "
                  f"**{per_user:,.0f} bytes**."]  # fmt: skip
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[60_000, 625_000])
    parser.add_argument("--runs", type=int, default=30, help="days of history published")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured per run")
    parser.add_argument("--clients", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    load_before = round(os.getloadavg()[0], 2)
    runs, footprints = [], []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as work:
        for users in args.users:
            measured, footprint = bench_users(
                users, runs=args.runs, seconds=args.seconds, work=Path(work),
                concurrency=tuple(args.clients),
            )  # fmt: skip
            runs += measured
            footprints.append(footprint)
    result = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "users": args.users,
        "runs": args.runs,
        "seconds": args.seconds,
        "load_before": load_before,
        "runs_measured": [asdict(run) for run in runs],
        "footprints": [asdict(footprint) for footprint in footprints],
    }
    table = render(result)
    print(table)
    write_result(args.out, f"{result['date']}-api", result, table)


if __name__ == "__main__":
    main()
