"""A real uvicorn server on 127.0.0.1 and an ephemeral port, in a thread, for the tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from purchasing_power.api import ApiSettings, create_app


@dataclass(frozen=True)
class Running:
    url: str
    app: object


@contextmanager
def running_server(
    settings: ApiSettings, *, app: object | None = None, timeout: float = 30.0
) -> Iterator[Running]:
    """Serve ``app`` (by default ``create_app(settings)``) until the block ends."""
    app = create_app(settings) if app is None else app
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", loop="uvloop", http="httptools"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield Running(url=f"http://127.0.0.1:{port}", app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
        listener.close()


def wait_for(predicate, *, timeout: float = 15.0, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is true (bounded), else fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(interval)
