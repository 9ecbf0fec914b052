"""Guard partner endpoints with `Authorization: Bearer <api key>` and a scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from app.apikeys.errors import InsufficientScope, InvalidApiKey
from app.apikeys.models import SCOPES, ApiKey
from app.apikeys.service import ApiKeyService
from app.deps import SessionDep

bearer = HTTPBearer(
    auto_error=False,  # a missing key gets our JSON error, not FastAPI's own
    scheme_name="PartnerApiKey",
    bearerFormat="rimay_<prefix>_<secret>",
    description="A partner API key, issued by an operator with `rimay apikey create`.",
)


class ApiError(BaseModel):
    """The body of a refused partner request."""

    error: str
    detail: str


API_KEY_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    401: {"model": ApiError, "description": "Missing, malformed, unknown or revoked API key"},
    403: {"model": ApiError, "description": "The API key lacks the scope this endpoint needs"},
}
"""Pass as ``responses=`` to a partner router so `/docs` shows the error bodies."""


class ApiKeyRefused(HTTPException):
    """A refused request with a stable ``code``; even without our handler FastAPI answers 401/403."""

    def __init__(self, error: InvalidApiKey | InsufficientScope, challenge: str) -> None:
        super().__init__(error.status_code, detail=str(error), headers={"WWW-Authenticate": challenge})
        self.code = error.code


async def api_key_error_handler(request: Request, exc: Exception) -> Response:
    """Answer `{"error": code, "detail": text}` with the `WWW-Authenticate` challenge."""
    if not isinstance(exc, ApiKeyRefused):  # pragma: no cover - registered for ApiKeyRefused only
        raise exc
    body = {"error": exc.code, "detail": exc.detail}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def add_api_key_error_handler(app: FastAPI) -> None:
    """Give refused partner requests their JSON body; call once in the app factory."""
    app.add_exception_handler(ApiKeyRefused, api_key_error_handler)


def require_scope(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency returning the caller's live `ApiKey` if it has ``scope``, e.g.

    ``ResultsReader = Annotated[ApiKey, Depends(require_scope("results:read"))]``, then
    ``async def results(key: ResultsReader) -> ...`` in a route.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; known scopes: {', '.join(SCOPES)}")

    async def api_key(
        db: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> ApiKey:
        if credentials is None:  # no header, an empty one, or another scheme (Basic ...)
            missing = InvalidApiKey("missing API key: send Authorization: Bearer <key>")
            raise ApiKeyRefused(missing, "Bearer")
        try:
            key = await ApiKeyService(db).authenticate(credentials.credentials, scope)
        except (InvalidApiKey, InsufficientScope) as error:
            raise ApiKeyRefused(error, _challenge(error)) from error
        await db.commit()  # keep last_used_at, and release SQLite's write lock before the route runs
        return key

    return api_key


def _challenge(error: InvalidApiKey | InsufficientScope) -> str:
    # RFC 6750 §3: the error code lets client libraries tell a bad key from a missing scope.
    if isinstance(error, InsufficientScope):
        return f'Bearer error="insufficient_scope", scope="{error.scope}"'
    return 'Bearer error="invalid_token"'


ResultsReader = Annotated[ApiKey, Depends(require_scope("results:read"))]
"""A key allowed to read flow results (FLOIP)."""
StatsReader = Annotated[ApiKey, Depends(require_scope("stats:read"))]
"""A key allowed to read disaggregated statistics."""
