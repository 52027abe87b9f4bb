"""What one running app holds: its settings, the snapshot watcher, the keys, the buckets."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache

from purchasing_power.api.keys import ApiKey, read_keys
from purchasing_power.api.metrics import Metrics
from purchasing_power.api.ratelimit import TokenBuckets
from purchasing_power.api.schemas import PublicationInfo
from purchasing_power.api.settings import ApiSettings
from purchasing_power.api.snapshot import Publication, Snapshot, Watcher

log = logging.getLogger("purchasing_power.api")


@lru_cache(maxsize=8)
def publication_info(publication: Publication) -> PublicationInfo:
    return PublicationInfo(
        publication_id=publication.publication_id,
        published_at=publication.published_at,
        as_of=publication.as_of,
        model_version=publication.model_version,
    )


@lru_cache(maxsize=8)
def publication_json(publication: Publication) -> dict[str, object]:
    return publication_info(publication).model_dump()


@dataclass
class ApiState:
    settings: ApiSettings
    keys: dict[str, ApiKey] = field(default_factory=dict)
    buckets: TokenBuckets = field(default_factory=TokenBuckets)
    _keys_signature: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        self.metrics = Metrics(publication_age=self._age, users=self._users)
        self.watcher = Watcher(
            self.settings.database,
            poll_seconds=self.settings.poll_seconds,
            pseudonym_key=self.settings.pseudonym_key,
            history_days=self.settings.history_days,
            on_swap=self._swapped,
            also=self.reload_keys,
        )

    @property
    def snapshot(self) -> Snapshot | None:
        return self.watcher.current

    def _age(self) -> float:
        snapshot = self.watcher.current
        return snapshot.publication.age_seconds() if snapshot else math.nan

    def _users(self) -> float:
        snapshot = self.watcher.current
        return float(snapshot.users) if snapshot else math.nan

    def _swapped(self, snapshot: Snapshot) -> None:
        self.metrics.swaps.inc()
        self.metrics.load_seconds.set(snapshot.loaded_seconds)

    def reload_keys(self) -> None:
        """Read the keys file again if it changed (a key added or revoked)."""
        path = self.settings.keys_file
        try:
            stat = path.stat()
            signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:
            signature = None
        if signature == self._keys_signature:
            return
        try:
            keys = read_keys(path)
        except (OSError, ValueError, TypeError) as error:  # keep the last good keys
            log.warning("cannot read the API keys in %s: %s", path, error)
            return
        self.keys, self._keys_signature = keys, signature
        live = sum(not key.is_revoked for key in keys.values())
        log.info("%d live API keys from %s", live, path)

    def start(self) -> None:
        self.reload_keys()
        self.watcher.start()

    def stop(self) -> None:
        self.watcher.stop()
