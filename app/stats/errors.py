"""Refusals of the partner statistics API: each a JSON body `{"error": code, "detail": text}`, code stable."""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.apikeys.deps import API_KEY_RESPONSES, ApiError
from app.errors import RimayError
from app.webhooks.routes import GuardedRoute

log = logging.getLogger(__name__)
PREFIX: Final = "/api/v1/stats"


class BadStatsQuery(RimayError):
    """A query the statistics cannot answer as asked."""

    status_code = 422
    code = "invalid_request"


class UnknownParameter(BadStatsQuery):
    """A query parameter this endpoint does not take (a typo would otherwise be silently ignored)."""

    code = "unknown_parameter"


class UnknownDimension(BadStatsQuery):
    """``group_by`` names something that is not one of the fixed dimensions."""

    code = "unknown_dimension"


class TooManyDimensions(BadStatsQuery):
    """``group_by`` names more dimensions than this endpoint allows."""

    code = "too_many_dimensions"


class DuplicateDimension(BadStatsQuery):
    """``group_by`` names a dimension twice."""

    code = "duplicate_dimension"


class InvalidDate(BadStatsQuery):
    """``from`` or ``to`` is not an ISO date (YYYY-MM-DD) in the years served."""

    code = "invalid_date"


class InvalidPeriod(BadStatsQuery):
    """``period`` is not day, week or month."""

    code = "invalid_period"


class RangeReversed(BadStatsQuery):
    """``from`` is after ``to``."""

    code = "range_reversed"


class RangeTooLong(BadStatsQuery):
    """The range covers more days than RIMAY_STATS_MAX_DAYS."""

    code = "range_too_long"


class TooManyPeriods(BadStatsQuery):
    """Split by period, the range has more periods than RIMAY_STATS_MAX_PERIODS."""

    code = "too_many_periods"


class QuestionNotFound(RimayError):
    """No survey question has this id."""

    status_code = 404
    code = "unknown_question"


class RateLimited(RimayError):
    """The key made too many requests in the last minute."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"at most {limit} requests per minute per API key; retry in {retry_after} s")
        self.retry_after = retry_after


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    """The one error shape of this API."""
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


class StatsRoute(GuardedRoute):
    """Every failure on a statistics route is JSON with a stable code; API key refusals pass through."""

    def malformed(self, request: Request) -> Response:
        """Parameters FastAPI itself could not read."""
        return error_response(422, "invalid_request", "the request parameters are malformed")

    def refused(self, request: Request, error: RimayError) -> Response:
        """A typed refusal; a rate limit says when to come back."""
        headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None
        return error_response(error.status_code, error.code, str(error), headers)

    def failed(self, request: Request) -> Response:
        """An unexpected failure, already logged."""
        return error_response(503, "temporarily_unavailable", "try again later")


HTTP_CODES: Final = {404: "not_found", 405: "method_not_allowed"}


async def stats_http_error(request: Request, exc: Exception) -> Response:
    """Routing errors under the statistics prefix in our shape; every other path keeps FastAPI's."""
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registered for HTTPException
        raise exc
    if not request.url.path.startswith(PREFIX):
        return await http_exception_handler(request, exc)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))


def add_stats_error_handler(app: FastAPI) -> None:
    """Answer unknown paths and methods under /api/v1/stats in JSON; call once in the app factory."""
    app.add_exception_handler(StarletteHTTPException, stats_http_error)


def _error(description: str, example: dict[str, str]) -> dict[str, Any]:
    return {
        "model": ApiError,
        "description": description,
        "content": {"application/json": {"example": example}},
    }


RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    401: {
        **API_KEY_RESPONSES[401],
        "content": {
            "application/json": {"example": {"error": "invalid_api_key", "detail": "unknown API key"}}
        },
    },
    403: {
        **API_KEY_RESPONSES[403],
        "content": {
            "application/json": {
                "example": {
                    "error": "insufficient_scope",
                    "detail": "this API key lacks the scope 'stats:read'",
                }
            }
        },
    },
    422: _error(
        "Bad parameters; `error` is one of unknown_parameter, unknown_dimension, too_many_dimensions, "
        "duplicate_dimension, invalid_date, invalid_period, range_reversed, range_too_long, "
        "too_many_periods, too_many_cells, invalid_request",
        {"error": "unknown_dimension", "detail": "unknown dimension 'income'; known: gender, ..."},
    ),
    429: {
        **_error(
            "Too many requests from this API key; retry after `Retry-After` seconds",
            {"error": "rate_limited", "detail": "at most 60 requests per minute per API key; retry in 12 s"},
        ),
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    },
    503: _error(
        "An unexpected failure (logged); try again later",
        {"error": "temporarily_unavailable", "detail": "try again later"},
    ),
}
"""Documented error bodies of every statistics endpoint (`/docs` shows them)."""

NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: _error("No survey question has this id", {"error": "unknown_question", "detail": "..."}),
}
