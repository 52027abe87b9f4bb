"""/v1/model: the active model's card metrics and validation figures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from purchasing_power.api.dependencies import Caller, Current, scoped
from purchasing_power.api.routers.scores import ERRORS
from purchasing_power.api.schemas import ModelSummary
from purchasing_power.api.state import publication_info

router = APIRouter(prefix="/v1", tags=["model"], responses=ERRORS)


@router.get("/model", response_model=ModelSummary)
async def get_model(who: Annotated[Caller, Depends(scoped("model"))], current: Current) -> Response:
    """The model that scored the current publication: its metrics against the baselines
    on the held-out cutoff and its deciles (calibration, lift)."""
    summary = ModelSummary(publication=publication_info(current.publication), **current.model)
    return Response(summary.model_dump_json(), media_type="application/json")
