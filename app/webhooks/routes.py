"""Route classes for Twilio webhooks: every failure gets a proper answer (TwiML or JSON), never a 500."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException  # FastAPI's is a subclass; a bad multipart body raises this
from twilio.twiml.messaging_response import MessagingResponse

from app.errors import RimayError, SessionNotFound
from app.webhooks.admission import Admission
from app.webhooks.outage import (
    DEADLINE_SECONDS,
    is_database_outage,
    request_voice_apology,
    sms_apology,
    with_own_dependencies,
    within,
)

log = logging.getLogger(__name__)
TWIML = "application/xml"


class GuardedRoute(APIRoute):
    """Never a bare 500: malformed input, typed refusals and bugs each get an answer from a subclass."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except HTTPException:
                raise
            except RequestValidationError as error:
                log.warning("malformed webhook %s: %s", request.url.path, _fields(error))
                return self.malformed(request)
            except RimayError as error:
                log.warning("webhook %s refused: %s", request.url.path, error.code)
                return self.refused(request, error)
            except Exception as error:
                return self._failure(request, error)

        return handler

    def _failure(self, request: Request, error: Exception) -> Response:
        if is_database_outage(error):
            # One line, not a traceback per request: an outage makes every webhook fail alike.
            log.error("webhook %s: database unavailable (%s)", request.url.path, type(error).__name__)
            return self.unavailable(request)
        log.error("webhook %s failed", request.url.path, exc_info=error)
        return self.failed(request)

    def malformed(self, request: Request) -> Response:
        """The answer to a request whose fields do not validate."""
        return JSONResponse({"error": "invalid_webhook"}, status_code=400)

    def refused(self, request: Request, error: RimayError) -> Response:
        """The answer to a typed business error."""
        return JSONResponse({"error": error.code}, status_code=error.status_code)

    def failed(self, request: Request) -> Response:
        """The answer to an unexpected failure (already logged with its traceback, numbers masked)."""
        return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)

    def unavailable(self, request: Request) -> Response:
        """The answer when the database is unreachable or too slow; by default the same as a failure."""
        return self.failed(request)


class TwimlRoute(GuardedRoute):
    """Errors become the app's TwiML apology (in Spanish and Quechua) instead of Twilio's English one."""

    queued: ClassVar[bool] = True
    """Whether the route waits for a slot of the worker's admission control (app/webhooks/admission.py)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        guarded = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            deadline = deadline_of(request)
            answer = await within(lambda: with_own_dependencies(request, lambda: guarded(request)), deadline)
            if answer is not None:
                return answer
            log.error("webhook %s: no answer within %.1f s, database hung?", request.url.path, deadline)
            return self.unavailable(request)

        async def handler(request: Request) -> Response:
            admission: Admission | None = getattr(request.app.state, "admission", None)
            if admission is None or not self.queued:
                return await bounded(request)
            async with admission.turn() as admitted:
                if not admitted:
                    log.warning("webhook %s turned away: %s", request.url.path, _why(admission))
                    return self.unavailable(request)
                answer = await bounded(request)
                admission.report(database_down=getattr(request.state, "database_down", False))
                return answer

        return handler

    def malformed(self, request: Request) -> Response:
        """A 4xx, still with spoken TwiML."""
        return _apology(request, 400)

    def refused(self, request: Request, error: RimayError) -> Response:
        """A caller is on the line for an unknown session: speak to them rather than fail."""
        return _apology(request, 200 if isinstance(error, SessionNotFound) else error.status_code)

    def failed(self, request: Request) -> Response:
        """Twilio plays only a 2xx answer, so a bug still gets a spoken apology."""
        return _apology(request, 200)

    def unavailable(self, request: Request) -> Response:
        """The database is down: the shipped apology and a hang-up, or a short text in both languages."""
        request.state.database_down = True
        if request.url.path.startswith("/twilio/sms"):
            return Response(content=sms_apology(), media_type=TWIML)
        return Response(content=request_voice_apology(request), media_type=TWIML)


class UnqueuedRoute(TwimlRoute):
    """Never queued by admission control: Twilio's fallback URLs (answered at once, without the database)
    and status callbacks (no caller waits on them, and one turned away would lose how a call ended)."""

    queued = False


def _why(admission: Admission) -> str:
    return "the database is down" if admission.database_down else "busy past the queue's wait"


def deadline_of(request: Request) -> float:
    """The configured deadline (RIMAY_WEBHOOK_DEADLINE_SECONDS), or the default before settings exist."""
    settings = getattr(request.app.state, "settings", None)
    return float(getattr(settings, "webhook_deadline_seconds", DEADLINE_SECONDS))


def _fields(error: RequestValidationError) -> str:
    """Name the bad fields without echoing their values (which may hold a phone number)."""
    return ", ".join(".".join(str(part) for part in item.get("loc", ())) for item in error.errors())


def _apology(request: Request, status_code: int) -> Response:
    """The flow's error prompt in the caller's language (from the action URL), else in every language."""
    state = request.app.state
    flow = state.flows[state.settings.default_flow]
    language = request.query_params.get("lang")
    languages = [language] if language in flow.languages else list(flow.languages)
    if request.url.path.startswith("/twilio/sms"):
        # One language only: both together would not fit in two SMS segments.
        reply = MessagingResponse()
        reply.message(flow.system["error"][languages[0]])
        body = str(reply)
    else:
        body = state.voice.apology(flow, languages)
    return Response(content=body, status_code=status_code, media_type=TWIML)
