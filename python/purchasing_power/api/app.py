"""``create_app(settings)``: the FastAPI app over the published BI copy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute

from purchasing_power.api import problems
from purchasing_power.api.dependencies import Authenticated
from purchasing_power.api.lookups import ScoreLookups
from purchasing_power.api.middleware import Authenticate, BodyLimit, RequestMetrics
from purchasing_power.api.routers import health, model, scores
from purchasing_power.api.settings import ApiSettings
from purchasing_power.api.state import ApiState

DESCRIPTION = """Read-only scores from the published BI copy of purchasing-power.

Every request needs an API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`),
unless the server runs with `--allow-anonymous`. Every answer names the publication it
came from. Errors are `application/problem+json` (RFC 9457)."""


def create_app(settings: ApiSettings, *, start: bool = True) -> FastAPI:
    """The app; with ``start`` its lifespan loads the publication and starts the watcher."""
    state = ApiState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start:
            state.start()
        try:
            yield
        finally:
            state.stop()

    # the docs are routes of their own below, behind the same key as everything else;
    # FastAPI's native OpenTelemetry is off: the app exports Prometheus metrics of its own,
    # and the check whether a provider is configured costs a lookup of 3 environment
    # variables per request
    app = FastAPI(
        title="purchasing-power scoring API",
        telemetry={"tracing": False, "metrics": False, "logs": False},
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.api = state
    problems.install(app)
    app.include_router(scores.router)
    app.include_router(model.router)
    app.include_router(health.router)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(who: Authenticated) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(who: Authenticated) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    # outermost last: metrics -> key and rate limit -> body limit -> score lookups -> FastAPI
    score_route = next(
        route
        for route in scores.router.routes
        if isinstance(route, APIRoute) and route.endpoint is scores.get_score
    )
    app.add_middleware(ScoreLookups, state=state, route=score_route)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Authenticate, state=state)
    app.add_middleware(RequestMetrics, metrics=state.metrics)
    return app
