"""Who is calling, what they may read, and the snapshot of a request.

The key check and the rate limit run once per request, for every path, in the
``Authenticate`` middleware (``identify`` below): nothing is answered to a caller
without a valid key. Routes then read the caller it found (``Authenticated``) and
check their scope (``scoped``); the security schemes below are what OpenAPI documents.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
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
ALL_SCOPES = frozenset(SCOPES)


@dataclass(frozen=True)
class Caller:
    name: str
    scopes: frozenset[str]


def state_of(request: Request) -> ApiState:
    api: ApiState = request.app.state.api
    return api


def token_from(authorization: str | None, api_key: str | None) -> str | None:
    """The key sent as ``Authorization: Bearer <key>``, else as ``X-API-Key: <key>``
    (as FastAPI's HTTPBearer and APIKeyHeader read them)."""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and credentials:
            return credentials
    return api_key or None


def identify(state: ApiState, token: str | None, *, host: str) -> Caller:
    """The caller a valid API key names, within its rate limit; else 401 or 429."""
    settings = state.settings
    if settings.allow_anonymous:
        who, rate, burst = Caller(f"anonymous@{host}", ALL_SCOPES), None, None
    else:
        if not token:
            state.metrics.rejected_for("no_key").inc()
            raise ProblemError(
                401,
                "An API key is required: send it as 'Authorization: Bearer <key>'.",
                headers=_CHALLENGE,
            )
        key = verify(state.keys, token)
        if key is None:
            state.metrics.rejected_for("bad_key").inc()
            raise ProblemError(
                401, "The API key is not valid or has been revoked.", headers=_CHALLENGE
            )
        who, rate, burst = Caller(key.name, key.scope_set), key.rate_per_second, key.burst
    rate = rate or settings.rate_per_second
    burst = burst or settings.burst
    wait = state.buckets.take(who.name, rate=rate, burst=burst)
    if wait > 0:
        state.metrics.rejected_for("rate").inc()
        raise ProblemError(
            429,
            f"Rate limit of {rate:g} requests a second exceeded: retry after the seconds"
            " in Retry-After.",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    return who


async def caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Caller:
    """The caller the Authenticate middleware found (the key schemes are for OpenAPI)."""
    found: Caller = request.state.caller
    return found


Authenticated = Annotated[Caller, Depends(caller)]


def require_scope(state: ApiState, who: Caller, scope: str) -> None:
    """403 unless the caller's key holds ``scope``."""
    if scope not in who.scopes:
        state.metrics.rejected_for("scope").inc()
        raise ProblemError(403, f"The API key lacks the '{scope}' scope this endpoint needs.")


def scoped(scope: str) -> Callable[[Request, Caller], Awaitable[Caller]]:
    """A dependency that lets through only callers whose key holds ``scope``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def require(request: Request, who: Authenticated) -> Caller:
        require_scope(state_of(request), who, scope)
        return who

    return require


def current_snapshot(state: ApiState) -> Snapshot:
    """The publication a request is answered from: read once, used throughout."""
    current = state.snapshot
    if current is None:
        raise ProblemError(
            503,
            "No publication is loaded yet: run dbt build to publish the BI copy.",
            headers={"Retry-After": "5"},
        )
    return current


async def snapshot(request: Request) -> Snapshot:
    return current_snapshot(state_of(request))


Current = Annotated[Snapshot, Depends(snapshot)]
