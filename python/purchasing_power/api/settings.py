"""The server's settings: flags first, then the environment, then defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from purchasing_power.api.keys import default_keys_file
from purchasing_power.publish import PSEUDONYM_KEY_ENV, PublishSettings
from purchasing_power.warehouse import warehouse_path

# A user id: what the generator writes (u000123), a pseudonym (64 hex digits) or a
# shop's own ids; nothing that could break out of a URL, a log line or a query.
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$"
USER_ID_MAX_LENGTH = 128


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
    max_batch: int = 1000
    max_body_bytes: int = 256 * 1024
    max_history: int = 1000

    @classmethod
    def from_environment(
        cls, *, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> ApiSettings:
        """``$PURCHASING_POWER_BI_DB`` (default beside ``$PURCHASING_POWER_DB``),
        ``$PURCHASING_POWER_API_KEYS`` and ``$PURCHASING_POWER_PSEUDONYM_KEY``; a flag given
        (an override not None) wins."""
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
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)
