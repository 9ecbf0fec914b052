"""`POST /twilio/sms/fallback`: Twilio's fallback URL, for when the SMS webhook fails or times out."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response

from app.privacy.pseudonym import normalize_e164
from app.sms.endpoints import reply_twiml
from app.webhooks.outage import sms_apology
from app.webhooks.routes import TWIML, UnqueuedRoute
from app.webhooks.signature import TwilioForm

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio/sms", tags=["twilio"], route_class=UnqueuedRoute)


@router.post("/fallback", summary="Twilio's fallback for a failed SMS webhook")
async def sms_fallback(form: TwilioForm) -> Response:
    """A short text in Spanish and Quechua (write again later), so silence is not taken for an answer."""
    log.error("sms fallback: Twilio reports error %s", form.get("ErrorCode", "?")[:16])
    if normalize_e164(form.get("From")) is None:
        # A short code or alphanumeric sender cannot read a reply, and may be a machine that answers back.
        return Response(reply_twiml(None), media_type=TWIML)
    return Response(sms_apology(), media_type=TWIML)
