"""Token buckets, one per caller: ``rate`` tokens a second, at most ``burst`` saved up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBuckets:
    """A request takes one token from its caller's bucket, or is told how long to wait."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, caller: str, *, rate: float, burst: int) -> float:
        """0 if the request may go ahead, else the seconds until a token is there."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(caller, (float(burst), now))
            tokens = min(float(burst), tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[caller] = (tokens - 1.0, now)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / rate
