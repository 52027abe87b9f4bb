"""Prometheus metrics of one app: requests, latencies, the publication served."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """A registry of its own per app, so that two apps in one process do not collide.

    A labelled series is looked up once and kept (``labels()`` validates and locks on
    every call: a few microseconds a request, for the same few series)."""

    def __init__(self, *, publication_age: Callable[[], float], users: Callable[[], float]):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "purchasing_power_api_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "purchasing_power_api_request_duration_seconds",
            "Time from the request's arrival to the end of its answer, by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.swaps = Counter(
            "purchasing_power_api_publication_swaps",
            "Publications loaded and swapped in since the server started.",
            registry=self.registry,
        )
        self.rejected = Counter(
            "purchasing_power_api_rejected_requests",
            "Requests refused before their route: by reason (no_key, bad_key, scope, rate).",
            ["reason"],
            registry=self.registry,
        )
        age = Gauge(
            "purchasing_power_api_publication_age_seconds",
            "Seconds since the publication served was published (NaN before the first).",
            registry=self.registry,
        )
        age.set_function(publication_age)
        served = Gauge(
            "purchasing_power_api_publication_users",
            "Users scored in the publication served.",
            registry=self.registry,
        )
        served.set_function(users)
        self.load_seconds = Gauge(
            "purchasing_power_api_publication_load_seconds",
            "Seconds the last publication took to load into memory.",
            registry=self.registry,
        )
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._rejected: dict[str, Any] = {}

    def answered(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answer and time it."""
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:  # a race here only looks the same series up twice
            series = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def rejected_for(self, reason: str) -> Any:
        """The counter of requests refused for ``reason``."""
        counter = self._rejected.get(reason)
        if counter is None:
            counter = self._rejected[reason] = self.rejected.labels(reason)
        return counter
