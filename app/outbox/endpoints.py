"""`POST /twilio/sms/status`: Twilio's delivery reports for the messages the worker sent."""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.deps import SessionDep, SettingsDep
from app.outbox.models import MessageStatus
from app.outbox.service import Outbox
from app.webhooks.routes import GuardedRoute
from app.webhooks.signature import TwilioForm

log = logging.getLogger(__name__)
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
ERROR_CODE = re.compile(r"^\d{1,6}$")
OUTBOX_ID = re.compile(r"^[1-9]\d{0,17}$")
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
    named = request.query_params.getlist("outbox")
    if not MESSAGE_SID.match(sid) or reported not in REPORTED or not _one_id(named):
        # Name the fields, never echo their values.
        log.warning("malformed SMS status callback: MessageSid, MessageStatus or outbox invalid")
        return JSONResponse({"error": "invalid_webhook"}, status_code=400)
    code = form.get("ErrorCode", "")
    outbox = Outbox(db, settings)
    stored = await outbox.record_delivery(
        sid,
        REPORTED[reported],
        code if ERROR_CODE.match(code) else None,
        outbox_id=int(named[0]) if named else None,
    )
    await db.commit()
    return JSONResponse({"status": stored})


def _one_id(named: list[str]) -> bool:
    """No row named (a report for a message sent before ids were in the URL), or one well-formed id."""
    return not named or (len(named) == 1 and OUTBOX_ID.match(named[0]) is not None)
