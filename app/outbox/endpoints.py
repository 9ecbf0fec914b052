"""`POST /twilio/sms/status`: Twilio's delivery reports for the messages the worker sent."""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.deps import SessionDep, SettingsDep
from app.outbox.models import MessageStatus
from app.outbox.sender import named_row
from app.outbox.service import Outbox
from app.webhooks.routes import GuardedRoute
from app.webhooks.signature import TwilioForm

log = logging.getLogger(__name__)
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
ERROR_CODE = re.compile(r"^\d{1,6}$")
REPORTED: dict[str, MessageStatus | None] = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    **dict.fromkeys(["accepted", "scheduled", "canceled", "queued", "sending", "receiving", "read"]),
}
"""Twilio's message statuses; those mapped to None are acknowledged without changing the row."""


router = APIRouter(tags=["twilio"], route_class=GuardedRoute)


@router.post("/twilio/sms/status", summary="Delivery status of a message sent by the outbox")
async def sms_status(
    request: Request, form: TwilioForm, db: SessionDep, settings: SettingsDep
) -> JSONResponse:
    """Move the message forward (sent, delivered, undelivered, failed); repeats change nothing.

    The worker's callback URL names the row (`?outbox=ID`, signed with the rest of the URL), so a report
    that arrives before the worker recorded the sid is kept. 404: no such message or row; 409: the row
    holds another message (see `Outbox.record_delivery`).
    """
    sid = form.get("MessageSid", "")
    reported = form.get("MessageStatus", "")
    try:
        outbox_id = named_row(request.query_params.getlist("outbox"))
    except ValueError:
        return _malformed()
    if not MESSAGE_SID.match(sid) or reported not in REPORTED:
        return _malformed()
    code = form.get("ErrorCode", "")
    outbox = Outbox(db, settings)
    stored = await outbox.record_delivery(
        sid,
        REPORTED[reported],
        code if ERROR_CODE.match(code) else None,
        outbox_id=outbox_id,
    )
    await db.commit()
    return JSONResponse({"status": stored})


def _malformed() -> JSONResponse:
    # Name the fields, never echo their values.
    log.warning("malformed SMS status callback: MessageSid, MessageStatus or outbox invalid")
    return JSONResponse({"error": "invalid_webhook"}, status_code=400)
