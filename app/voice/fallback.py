"""`POST /twilio/voice/fallback`: Twilio's fallback URL, for when the voice webhook fails or times out."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from app.webhooks.outage import request_voice_apology
from app.webhooks.routes import TWIML, UnqueuedRoute
from app.webhooks.signature import TwilioForm

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio/voice", tags=["twilio"], route_class=UnqueuedRoute)


@router.post("/fallback", summary="Twilio's fallback for a failed voice webhook")
async def voice_fallback(form: TwilioForm, request: Request) -> Response:
    """The shipped apology in the caller's language (from the failed URL), then a hang-up; no database."""
    # Only the code: ErrorUrl holds a session id, and the From field a phone number.
    log.error("voice fallback: Twilio reports error %s", form.get("ErrorCode", "?")[:16])
    return Response(request_voice_apology(request, form), media_type=TWIML)
