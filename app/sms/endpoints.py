"""Twilio SMS webhook: thin route around the SMS service; replies are TwiML built with MessagingResponse."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from twilio.twiml.messaging_response import MessagingResponse

from app.broadcasts.deps import news_for
from app.contacts.deps import contacts_for
from app.deps import SessionDep
from app.errors import InvalidWebhook
from app.privacy.pseudonym import normalize_e164
from app.sessions.deps import conversations_for
from app.settings import Settings
from app.sms.service import SmsContext, SmsService
from app.webhooks.routes import TWIML, TwimlRoute
from app.webhooks.signature import TwilioForm

router = APIRouter(prefix="/twilio/sms", tags=["twilio"], route_class=TwimlRoute)
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")


async def _service(request: Request, db: SessionDep) -> SmsService:
    state = request.app.state
    settings: Settings = state.settings
    news = news_for(state, db)  # one service for the keywords and the conversation's subscribe nodes
    context = SmsContext(
        flow=state.flows[settings.default_flow],
        idle=timedelta(minutes=settings.sms_idle_minutes),
        contacts=contacts_for(state, db),
        news=news,
    )
    conversations = conversations_for(state, db, recordings=False, news=news)
    return SmsService(db, conversations, context)


Sms = Annotated[SmsService, Depends(_service)]


def reply_twiml(text: str | None) -> str:
    """A reply as TwiML; no text means an empty response, so nothing is sent."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response)


@router.post("", summary="An SMS comes in")
async def incoming_sms(form: TwilioForm, sms: Sms) -> Response:
    """Answer the message with the next step of the hotline, a keyword's answer, or nothing."""
    message_sid = form.get("MessageSid", "")
    if not MESSAGE_SID.match(message_sid):
        raise InvalidWebhook("MessageSid missing or malformed")
    if "From" not in form:
        raise InvalidWebhook("From missing")
    e164 = normalize_e164(form["From"])
    if e164 is None:
        # A short code or alphanumeric sender cannot be answered or remembered.
        return Response(reply_twiml(None), media_type=TWIML)
    # PostgreSQL text cannot hold NUL (and no phone shows one): drop it rather than fail the message.
    body = form.get("Body", "").replace("\x00", "")
    reply = await sms.receive(message_sid, e164, body)
    return Response(reply_twiml(reply), media_type=TWIML)
