"""`GET /healthz`: is the database reachable and are the flows loaded."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.webhooks.outage import within
from app.webhooks.routes import deadline_of

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


async def _ping(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return True


@router.get("/healthz", summary="Health check")
async def healthz(request: Request) -> JSONResponse:
    """200 when the database answers, 503 (with the reason) when it does not or hangs."""
    body: dict[str, Any] = {"status": "ok", "database": "ok", "flows": sorted(request.app.state.flows)}
    deadline = deadline_of(request)
    try:
        # A hung server must not hang the check: a load balancer or monitor wants an answer now.
        answered = await within(lambda: _ping(request.app.state.engine), deadline)
    except Exception as error:
        log.warning("health check: database unreachable: %s", type(error).__name__)
        answered = False
    if not answered:
        if answered is None:
            log.warning("health check: no answer from the database within %.1f s", deadline)
        body.update(status="error", database="unreachable")
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)
