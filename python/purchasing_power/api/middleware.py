"""Pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware): request metrics,
the key check and rate limit, and the body size limit."""

from __future__ import annotations

import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from purchasing_power.api.dependencies import identify, token_from
from purchasing_power.api.metrics import Metrics
from purchasing_power.api.problems import ProblemError, problem_response
from purchasing_power.api.state import ApiState


class BodyTooLargeError(HTTPException):
    """An HTTPException, so that FastAPI's body reader passes it on as it is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the limit of {limit:,} bytes.")


class BodyLimit:
    """Refuse bodies over ``max_bytes``: at once by Content-Length, else while reading."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await problem_response(400, "Content-Length is not a number.")(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                error = BodyTooLargeError(self.max_bytes)
                await problem_response(413, error.detail)(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        await self.app(scope, limited, send)


class Authenticate:
    """Every request, on every path, before any routing: the key checked in constant
    time and the caller's token taken from its bucket; a request without a valid key, or
    over its rate, is answered here (401, 429). The caller is left in the request's
    state, where routes read it and check their scope."""

    def __init__(self, app: ASGIApp, *, state: ApiState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = api_key = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"x-api-key" and api_key is None:
                api_key = value.decode("latin-1")
        client = scope.get("client")
        try:
            who = identify(
                self.state,
                token_from(authorization, api_key),
                host=client[0] if client else "unknown",
            )
        except ProblemError as error:
            answer = problem_response(
                error.status, error.detail, instance=scope["path"], headers=error.headers
            )
            await answer(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = who
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


class RequestMetrics:
    """Count and time every request by method, route template (never the raw path, whose
    ids would make a series per user) and status."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.answered(scope["method"], template, status, time.perf_counter() - start)
