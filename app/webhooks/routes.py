"""A route class for Twilio webhooks: every failure still answers valid TwiML, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from twilio.twiml.messaging_response import MessagingResponse

from app.errors import RimayError, SessionNotFound

log = logging.getLogger(__name__)
TWIML = "application/xml"


class TwimlRoute(APIRoute):
    """Turns errors into the app's TwiML apology (in Spanish and Quechua) instead of Twilio's English one."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except HTTPException:
                raise
            except RequestValidationError as error:
                log.warning("malformed webhook %s: %s", request.url.path, _fields(error))
                return _apology(request, 400)
            except RimayError as error:
                log.warning("webhook %s refused: %s", request.url.path, error.code)
                # A caller is on the line for an unknown session: speak to them rather than fail.
                return _apology(request, 200 if isinstance(error, SessionNotFound) else error.status_code)
            except Exception:
                log.exception("webhook %s failed", request.url.path)
                return _apology(request, 200)

        return handler


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
        reply = MessagingResponse()
        reply.message("\n".join(flow.system["error"][lang] for lang in languages))
        body = str(reply)
    else:
        body = state.voice.apology(flow, languages)
    return Response(content=body, status_code=status_code, media_type=TWIML)
