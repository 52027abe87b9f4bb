"""/v1 scores: one user's current score and history, and a batch of users."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from purchasing_power.api.dependencies import Caller, Current, scoped
from purchasing_power.api.problems import ProblemError
from purchasing_power.api.schemas import (
    BatchRequest,
    BatchResponse,
    HistoryResponse,
    Problem,
    ScoreResponse,
    UserId,
)
from purchasing_power.api.settings import MAX_BATCH, MAX_HISTORY
from purchasing_power.api.snapshot import Snapshot
from purchasing_power.api.state import publication_json

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}}
    for status in (401, 403, 404, 413, 422, 429, 503)
}
router = APIRouter(prefix="/v1", tags=["scores"], responses=ERRORS)
UserPath = Annotated[UserId, Path(description="A user id, raw or its pseudonym.")]


def _json(body: dict[str, Any]) -> Response:
    """The answer in the shape of its response model, serialised by pydantic-core without
    building the models: the snapshot's values are typed when they are loaded, and
    building a model per user costs five times the lookup (tests/test_api.py validates
    answers against the models)."""
    return Response(to_json(body), media_type="application/json")


def _not_found(user_id: str) -> ProblemError:
    return ProblemError(404, f"User {user_id!r} has no score in the current publication.")


def score_answer(current: Snapshot, who: Caller, user_id: str) -> bytes:
    """The body of a score lookup; also what ``lookups.ScoreLookups`` answers."""
    found = current.score(user_id, with_reasons="reasons" in who.scopes)
    if found is None:
        raise _not_found(user_id)
    return to_json({"publication": publication_json(current.publication), "score": found})


@router.get("/users/{user_id}/score", response_model=ScoreResponse)
async def get_score(
    user_id: UserPath, who: Annotated[Caller, Depends(scoped("scores"))], current: Current
) -> Response:
    """A user's current score: spend, probability, index, tier, status, the top reasons
    (with the reasons scope) and the last change this build flagged."""
    return Response(score_answer(current, who, user_id), media_type="application/json")


@router.post(
    "/scores/batch",
    response_model=BatchResponse,
    description=f"Up to {MAX_BATCH:,} users' current scores, each with a status found or"
    " not_found.",
)
async def get_scores(
    request: BatchRequest, who: Annotated[Caller, Depends(scoped("scores"))], current: Current
) -> Response:
    """A batch of users' current scores (``description`` states the limit)."""
    with_reasons = "reasons" in who.scopes
    results = []
    for user_id in request.user_ids:
        found = current.score(user_id, with_reasons=with_reasons)
        status = "found" if found else "not_found"
        results.append({"user_id": user_id, "status": status, "score": found})
    return _json({"publication": publication_json(current.publication), "results": results})


@router.get("/users/{user_id}/history", response_model=HistoryResponse)
async def get_history(
    user_id: UserPath,
    who: Annotated[Caller, Depends(scoped("history"))],
    current: Current,
    limit: Annotated[
        int, Query(ge=1, le=MAX_HISTORY, description="The latest scores to return.")
    ] = 100,
) -> Response:
    """A user's scores over the builds, latest first."""
    if current.history_in_memory(user_id, limit=limit):
        history = current.history_of(user_id, limit=limit)
    else:  # older entries are a query of the published file: off the event loop
        history = await run_in_threadpool(current.history_of, user_id, limit=limit)
    if history is None:
        raise _not_found(user_id)
    return _json(
        {"publication": publication_json(current.publication), "user_id": user_id,
         "history": history}
    )  # fmt: skip
