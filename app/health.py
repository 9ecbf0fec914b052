"""`GET /healthz`: is the database reachable and are the flows loaded."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Health check")
async def healthz(request: Request) -> JSONResponse:
    """200 when the database answers, 503 (with the reason) when it does not."""
    body: dict[str, Any] = {"status": "ok", "database": "ok", "flows": sorted(request.app.state.flows)}
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:
        log.warning("health check: database unreachable: %s", type(error).__name__)
        body.update(status="error", database="unreachable")
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)
