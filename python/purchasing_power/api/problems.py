"""Errors as RFC 9457 ``application/problem+json``: a status, a title and one sentence."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """Raised anywhere in a request to answer with a problem document."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _where(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "path", "query")]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text or "the request body"


def _sentence(error: RequestValidationError) -> str:
    """One sentence from pydantic's errors: the first, and how many more."""
    errors = error.errors()
    if not errors:
        return "The request is not valid."
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON."
    message = str(first.get("msg", "is not valid")).rstrip(".")
    if first.get("type") == "string_pattern_mismatch":
        message = "may hold only letters, digits and . _ : @ - (starting with a letter or digit)"
    where = _where(tuple(first.get("loc", ())))
    more = f" ({len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}."


def install(app: FastAPI) -> None:
    """Answer every error, ours, FastAPI's and Starlette's, as a problem document."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, error: ProblemError) -> JSONResponse:
        return problem_response(
            error.status, error.detail, instance=request.url.path, headers=error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return problem_response(422, _sentence(error), instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = {
            404: "No such endpoint: see /docs for the API's endpoints.",
            405: "This endpoint does not take that method.",
        }.get(error.status_code, str(error.detail))
        return problem_response(
            error.status_code, detail, instance=request.url.path, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        return problem_response(
            500, "The server failed to answer; the error is in its log.", instance=request.url.path
        )
