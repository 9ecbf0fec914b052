"""`GET /metrics` in Prometheus format: webhook latency and steps, the outbox's depth and failures.

Counters live in each process. With several uvicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
folder shared by them (cleared at each start) and every worker's figures are added up on each scrape.
Labels are route templates and statuses, never anything a caller sent.
"""

from __future__ import annotations

import os
import time
from typing import Final

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.outbox.models import OutboxMessage

WEBHOOKS: Final = "/twilio/"
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0)
"""Seconds; Twilio gives up after 15."""

WEBHOOK_SECONDS = Histogram(
    "rimay_webhook_seconds",
    "Time to answer a Twilio webhook, by route template and status code.",
    ["route", "status"],
    buckets=LATENCY_BUCKETS,
)
WEBHOOK_STEPS = Counter(
    "rimay_webhook_steps", "Conversation steps answered (calls started and keys pressed, texts).", ["channel"]
)
TURNED_AWAY = Counter(
    "rimay_webhooks_turned_away",
    "Webhooks answered with the apology without being worked on: the worker was busy past the queue's "
    "wait (busy), or the database was down (database).",
    ["reason"],
)
OUTBOX = Gauge(
    "rimay_outbox_messages",
    "Outbox rows by status (pending and sending are the queue; failed need a look).",
    ["status"],
    multiprocess_mode="mostrecent",
)
STEP_ROUTES: Final = {
    "/twilio/voice": "voice",
    "/twilio/voice/sessions/{session_id}/steps/{number}": "voice",
    "/twilio/sms": "sms",
}


class WebhookTimer:
    """ASGI middleware timing every `/twilio/...` request (pure ASGI: no per-request task or copy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(WEBHOOKS):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            WEBHOOK_SECONDS.labels(route, str(status)).observe(time.perf_counter() - started)
            channel = STEP_ROUTES.get(route)
            if channel is not None and status == 200:
                WEBHOOK_STEPS.labels(channel).inc()


router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Webhook latency and steps, and the outbox by status (read from the database now)."""
    async with request.app.state.sessionmaker() as db:
        rows = (
            await db.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
        ).all()
    OUTBOX.clear()
    for status, count in rows:
        OUTBOX.labels(str(status)).set(count)
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    """Every worker's figures when they share a multiprocess folder; this process's otherwise."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return DEFAULT_REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def add_metrics(app: FastAPI) -> None:
    """Time the webhooks and serve `/metrics`; call once in the app factory."""
    app.add_middleware(WebhookTimer)
    app.include_router(router)
