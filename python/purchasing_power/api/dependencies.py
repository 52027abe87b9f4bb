"""Auth, scopes, rate limits and the snapshot of a request, as FastAPI dependencies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from purchasing_power.api.keys import SCOPES, verify
from purchasing_power.api.problems import ProblemError
from purchasing_power.api.snapshot import Snapshot
from purchasing_power.api.state import ApiState

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: <key>")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="purchasing-power"'}


@dataclass(frozen=True)
class Caller:
    name: str
    scopes: frozenset[str]


def state_of(request: Request) -> ApiState:
    return request.app.state.api


async def caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Caller:
    """The caller a valid API key names, within its rate limit; else 401 or 429."""
    state = state_of(request)
    settings = state.settings
    if settings.allow_anonymous:
        host = request.client.host if request.client else "unknown"
        who, rate, burst = Caller(f"anonymous@{host}", frozenset(SCOPES)), None, None
    else:
        token = bearer.credentials if bearer is not None else header
        if not token:
            state.metrics.rejected.labels("no_key").inc()
            raise ProblemError(
                401,
                "An API key is required: send it as 'Authorization: Bearer <key>'.",
                headers=_CHALLENGE,
            )
        key = verify(state.keys, token)
        if key is None:
            state.metrics.rejected.labels("bad_key").inc()
            raise ProblemError(
                401, "The API key is not valid or has been revoked.", headers=_CHALLENGE
            )
        who, rate, burst = Caller(key.name, frozenset(key.scopes)), key.rate_per_second, key.burst
    rate = rate or settings.rate_per_second
    burst = burst or settings.burst
    wait = state.buckets.take(who.name, rate=rate, burst=burst)
    if wait > 0:
        state.metrics.rejected.labels("rate").inc()
        raise ProblemError(
            429,
            f"Rate limit of {rate:g} requests a second exceeded: retry after the seconds"
            " in Retry-After.",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    return who


Authenticated = Annotated[Caller, Depends(caller)]


def scoped(scope: str):
    """A dependency that lets through only callers whose key holds ``scope``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def require(request: Request, who: Authenticated) -> Caller:
        if scope not in who.scopes:
            state_of(request).metrics.rejected.labels("scope").inc()
            raise ProblemError(403, f"The API key lacks the '{scope}' scope this endpoint needs.")
        return who

    return require


async def snapshot(request: Request) -> Snapshot:
    """The publication this request is answered from: read once, used throughout."""
    current = state_of(request).snapshot
    if current is None:
        raise ProblemError(
            503,
            "No publication is loaded yet: run dbt build to publish the BI copy.",
            headers={"Retry-After": "5"},
        )
    return current


Current = Annotated[Snapshot, Depends(snapshot)]
