"""/healthz, /readyz and /metrics (unversioned, as probes and scrapers expect them).

The probes need a key like everything else, with the ``health`` scope: a load balancer
holds a key that can tell whether the server is up and ready and read nothing else
(docs/api.md says why they are not open, and how a probe sends its key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from purchasing_power.api.dependencies import Caller, scoped, state_of
from purchasing_power.api.routers.scores import ERRORS
from purchasing_power.api.schemas import Health, Readiness
from purchasing_power.api.state import publication_info

router = APIRouter(tags=["operations"], responses=ERRORS)


Probe = Annotated[Caller, Depends(scoped("health"))]


@router.get("/healthz", response_model=Health)
async def healthz(who: Probe) -> Health:
    """The process is up (says nothing of the publication)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request, who: Probe) -> JSONResponse:
    """Ready once a publication is loaded: which, and how old it is. 503 before."""
    current = state_of(request).snapshot
    if current is None:
        body = Readiness(ready=False, publication=None, age_seconds=None, users=None)
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    body = Readiness(
        ready=True,
        publication=publication_info(current.publication),
        age_seconds=round(current.publication.age_seconds(), 3),
        users=current.users,
    )
    return JSONResponse(body.model_dump(mode="json"))


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, who: Annotated[Caller, Depends(scoped("metrics"))]) -> Response:
    """Prometheus metrics: requests, latencies, the publication's age and users."""
    registry = state_of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
