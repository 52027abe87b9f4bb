"""The scoring API as several processes sharing one listening socket, as uvicorn's
``--workers`` runs them, for ``bench_api.py --workers``: the kernel hands each new
connection to one of them, and each loads the publication, and watches for the next,
on its own. ``purchasing-power serve`` runs one process (docs/api.md says why); this
is here to measure what a second would buy.

    python bench/serve_workers.py --bi-db FILE --keys-file FILE --port N --workers 2

Prints the workers' process ids on one line once every one of them has loaded the
publication and listens, then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
from pathlib import Path

import uvicorn
import uvloop

from purchasing_power.api import ApiSettings, create_app


async def _serve(settings: ApiSettings, listener: socket.socket, told: int) -> None:
    config = uvicorn.Config(
        create_app(settings), loop="uvloop", http="httptools", lifespan="on",
        log_level="warning", access_log=False, server_header=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.05)
    os.write(told, b".")  # loaded (the lifespan loads the publication) and listening
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bi-db", type=Path, required=True)
    parser.add_argument("--keys-file", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    settings = ApiSettings(database=args.bi_db, keys_file=args.keys_file, port=args.port)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(2048)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    ready, told = os.pipe()
    workers = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:  # a worker: its own app, snapshot and watcher
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
            uvloop.run(_serve(settings, listener, told))
            os._exit(0)
        workers.append(pid)
    for _ in workers:
        os.read(ready, 1)
    print(" ".join(str(pid) for pid in workers), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    for pid in workers:
        os.kill(pid, signal.SIGINT)
    for pid in workers:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
