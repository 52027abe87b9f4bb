"""Run the app on uvicorn (uvloop, httptools), one process."""

from __future__ import annotations

import logging

import uvicorn

from purchasing_power.api.app import create_app
from purchasing_power.api.settings import ApiSettings

log = logging.getLogger("purchasing_power.api")


def serve(settings: ApiSettings, *, log_level: str = "info", access_log: bool = False) -> None:
    """Serve until interrupted. One process: the snapshot, the rate limits and the
    metrics live in its memory, and a second worker would hold copies of its own (and
    swap publications at its own moment); docs/api.md has what a second bought when
    measured. Run more behind a proxy if one core is not enough."""
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s: %(message)s")
    if settings.allow_anonymous:
        log.warning(
            "--allow-anonymous: every request is answered without an API key, with every "
            "scope. For local use only."
        )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        access_log=access_log,
        server_header=False,
        proxy_headers=False,
        lifespan="on",
    )
