"""Single-score lookups, answered before FastAPI's routing.

``GET /v1/users/{user_id}/score`` is the endpoint callers wait on (a storefront asks it
per page view), and the one with a latency goal. FastAPI's per-request work (routing,
solving the route's dependencies, binding its parameters) costs about 100 µs of CPU in
this FastAPI version, several times the lookup itself. ``ScoreLookups`` answers a
well-formed request for it directly, with what the route uses: the id checked against
the route's pattern and length, the same scope check, the snapshot read once, and the
same answer (``scores.score_answer``). Anything else (another path or method, an id the
pattern refuses) goes on to FastAPI, which answers it, errors included, as it always
did; OpenAPI documents the route as FastAPI declares it.
"""

from __future__ import annotations

import re

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from purchasing_power.api.dependencies import current_snapshot, require_scope
from purchasing_power.api.problems import ProblemError, problem_response
from purchasing_power.api.routers.scores import score_answer
from purchasing_power.api.settings import USER_ID_MAX_LENGTH, USER_ID_PATTERN
from purchasing_power.api.state import ApiState

PREFIX, SUFFIX = "/v1/users/", "/score"
_USER_ID = re.compile(USER_ID_PATTERN)
_JSON = (b"content-type", b"application/json")


class ScoreLookups:
    """Answer ``GET /v1/users/{user_id}/score`` for a valid id; pass on the rest."""

    def __init__(self, app: ASGIApp, *, state: ApiState, route: BaseRoute) -> None:
        self.app = app
        self.state = state
        self.route = route  # the FastAPI route it stands in for: metrics name its template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        user_id = path[len(PREFIX) : -len(SUFFIX)]
        if (
            scope.get("method") != "GET"
            or not path.startswith(PREFIX)
            or not path.endswith(SUFFIX)
            or len(user_id) > USER_ID_MAX_LENGTH
            or not _USER_ID.fullmatch(user_id)
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        state = self.state
        try:
            require_scope(state, scope["state"]["caller"], "scores")
            body = score_answer(current_snapshot(state), scope["state"]["caller"], user_id)
        except ProblemError as error:
            answer = problem_response(
                error.status, error.detail, instance=path, headers=error.headers
            )
            await answer(scope, receive, send)
            return
        headers = [_JSON, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
