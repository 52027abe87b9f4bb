"""The server's settings: flags first, then the environment, then defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from purchasing_power.api.keys import default_keys_file
from purchasing_power.api.snapshot import HISTORY_DAYS_IN_MEMORY
from purchasing_power.publish import PSEUDONYM_KEY_ENV, PublishSettings
from purchasing_power.warehouse import warehouse_path

# A user id: what the generator writes (u000123), a pseudonym (64 hex digits) or a
# shop's own ids; nothing that could break out of a URL, a log line or a query.
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$"
USER_ID_MAX_LENGTH = 128
# The input limits: the request schema, the route, the OpenAPI schema and docs/api.md
# all state these (a test holds them equal).
MAX_BATCH = 1000  # user ids in one POST /v1/scores/batch
MAX_HISTORY = 1000  # the most entries one GET /v1/users/{id}/history asks for (limit)
HISTORY_DAYS_ENV = "PURCHASING_POWER_API_HISTORY_DAYS"


@dataclass(frozen=True)
class ApiSettings:
    """What ``purchasing-power serve`` serves, to whom, and within which limits."""

    database: Path  # the published BI copy (never the warehouse)
    keys_file: Path
    host: str = "127.0.0.1"
    port: int = 8000
    allow_anonymous: bool = False
    pseudonym_key: bytes | None = None  # lets callers send raw user ids to a pseudonymised copy
    poll_seconds: float = 1.0  # how often the watcher looks for a new publication or keys
    rate_per_second: float = 50.0  # each key's token bucket, unless the key says otherwise
    burst: int = 100
    max_body_bytes: int = 256 * 1024
    # the latest as_of dates of score history held in memory; older ones are read from
    # the published file per request (docs/api.md: the memory against history days)
    history_days: int = HISTORY_DAYS_IN_MEMORY

    @classmethod
    def from_environment(
        cls, *, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> ApiSettings:
        """``$PURCHASING_POWER_BI_DB`` (default beside ``$PURCHASING_POWER_DB``),
        ``$PURCHASING_POWER_API_KEYS``, ``$PURCHASING_POWER_PSEUDONYM_KEY`` and
        ``$PURCHASING_POWER_API_HISTORY_DAYS``; a flag given (an override not None) wins."""
        environ = os.environ if environ is None else environ
        published = PublishSettings.from_environment(
            warehouse=Path(environ.get("PURCHASING_POWER_DB") or warehouse_path()),
            environ=environ,
        )
        key = environ.get(PSEUDONYM_KEY_ENV)
        values: dict[str, Any] = {
            "database": published.database,
            "keys_file": default_keys_file(environ),
            "pseudonym_key": key.encode() if key else None,
        }
        if environ.get(HISTORY_DAYS_ENV):
            try:
                values["history_days"] = int(environ[HISTORY_DAYS_ENV])
            except ValueError:
                raise ValueError(
                    f"${HISTORY_DAYS_ENV} must be a whole number of days, not "
                    f"{environ[HISTORY_DAYS_ENV]!r}"
                ) from None
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        if self.history_days < 1:
            raise ValueError(f"history_days must be at least 1, not {self.history_days}")
