"""Twilio voice webhooks: thin routes around the conversation service and the TwiML renderer."""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from sqlalchemy.exc import IntegrityError

from app.contacts.deps import contacts_for
from app.deps import SessionDep, SettingsDep
from app.errors import CallNotFound, InvalidWebhook
from app.flows.events import Digits, NoInput, Recording
from app.outbox.sender import named_row
from app.outbox.service import Outbox
from app.privacy.pseudonym import normalize_e164
from app.sessions.deps import conversations_for
from app.sessions.service import Channel, ConversationService, Replay, Turn
from app.settings import Settings
from app.voice.callback import CallbackService
from app.voice.twiml import VoiceRenderer
from app.webhooks.routes import TWIML, TwimlRoute, UnqueuedRoute
from app.webhooks.signature import TwilioForm

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio/voice", tags=["twilio"], route_class=TwimlRoute)
status_router = APIRouter(prefix="/twilio/voice", tags=["twilio"], route_class=UnqueuedRoute)

CALL_SID = r"^CA[0-9a-fA-F]{32}$"
SESSION_ID = r"^[0-9a-f]{32}$"
RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")


async def _conversations(request: Request, db: SessionDep) -> ConversationService:
    return conversations_for(request.app.state, db, recordings=True)


async def _renderer(request: Request) -> VoiceRenderer:
    renderer: VoiceRenderer = request.app.state.voice
    return renderer


async def _callbacks(request: Request, db: SessionDep) -> CallbackService:
    settings: Settings = request.app.state.settings
    return CallbackService(db, settings, contacts_for(request.app.state, db), Outbox(db, settings))


Conversations = Annotated[ConversationService, Depends(_conversations)]
Callbacks = Annotated[CallbackService, Depends(_callbacks)]
Renderer = Annotated[VoiceRenderer, Depends(_renderer)]


def _call_sid(form: dict[str, str]) -> str:
    call_sid = form.get("CallSid", "")
    if not re.match(CALL_SID, call_sid):
        raise InvalidWebhook("CallSid missing or malformed")
    return call_sid


def _outbound(form: dict[str, str]) -> bool:
    """A call the hotline placed (a call-back), rather than one it received."""
    return form.get("Direction", "inbound").startswith("outbound")


def _call_back_row(request: Request) -> int | None:
    """The outbox row a call-back's URL names; a malformed one is ignored (the person is still answered)."""
    try:
        return named_row(request.query_params.getlist("outbox"))
    except ValueError:
        log.warning("call-back webhook with a malformed outbox id: the call is answered, no row recorded")
        return None


def _caller_number(form: dict[str, str]) -> str | None:
    """The caller's E.164 number (held in memory only): To for a call-back, else From."""
    return normalize_e164(form.get("To") if _outbound(form) else form.get("From"))


@router.post("", summary="A call comes in")
async def incoming_call(
    request: Request,
    form: TwilioForm,
    settings: SettingsDep,
    conversations: Conversations,
    renderer: Renderer,
    callbacks: Callbacks,
) -> Response:
    """Start the hotline flow for a new call (or replay the first answer on redelivery).

    A call-back placed by the outbox arrives here too: then the caller is the number called (To), and the
    URL names the call-back's outbox row, which records the call if the worker could not.
    """
    call_sid = _call_sid(form)
    if "From" not in form:
        raise InvalidWebhook("From missing")
    outbound = _outbound(form)
    e164 = _caller_number(form)
    if settings.callback_mode and not outbound and e164 is not None:
        rejected = await _reject_for_callback(call_sid, e164, settings, conversations, callbacks)
        if rejected is not None:
            return Response(rejected, media_type=TWIML)
    outbox_id = _call_back_row(request) if outbound else None
    if outbox_id is not None:
        await callbacks.placed(outbox_id, call_sid)  # committed with the call's first step
    result = await conversations.begin(Channel.VOICE, call_sid, e164, settings.default_flow)
    if isinstance(result, Turn):
        log.info(
            "call started: session %s, flow %s, language %s, %s",
            result.session.id,
            result.session.flow_id,
            result.session.language or "not chosen",
            "call-back" if outbound else "inbound",
        )
    return await _answer(result, conversations, renderer, settings.public_base_url)


async def _reject_for_callback(
    call_sid: str,
    e164: str,
    settings: Settings,
    conversations: ConversationService,
    callbacks: CallbackService,
) -> str | None:
    """<Reject> and a queued call-back, committed together; None when the call must be answered."""
    replay = await conversations.replay_first(Channel.VOICE, call_sid)
    if replay is not None:
        return replay.response
    caller = await conversations.caller(e164)
    twiml = await callbacks.reject_and_call_back(call_sid, caller, e164, settings.default_flow)
    if twiml is None:
        return None
    try:
        await conversations.db.commit()
    except IntegrityError:  # the same call delivered twice at once: answer as the first did
        await conversations.db.rollback()
        replay = await conversations.replay_first(Channel.VOICE, call_sid)
        return replay.response if replay is not None else None
    return twiml


@router.post("/sessions/{session_id}/steps/{number}", summary="The caller answered a prompt")
async def step(
    form: TwilioForm,
    session_id: Annotated[str, Path(pattern=SESSION_ID)],
    number: Annotated[int, Path(ge=1, le=100_000)],
    settings: SettingsDep,
    conversations: Conversations,
    renderer: Renderer,
) -> Response:
    """Apply the caller's key press (or silence) and answer with the next prompt."""
    call_sid = _call_sid(form)
    given = _recording(form) if "RecordingSid" in form else _keys(form)
    result = await conversations.advance(session_id, number, call_sid, given, _caller_number(form))
    return await _answer(result, conversations, renderer, settings.public_base_url)


def _keys(form: dict[str, str]) -> Digits | NoInput:
    # A forged NUL would reach the database (PostgreSQL refuses it); a keypad cannot send one.
    digits = form.get("Digits", "").replace("\x00", "")
    return Digits(digits) if digits else NoInput()


def _recording(form: dict[str, str]) -> Recording:
    """A spoken answer Twilio recorded (the audio stays at Twilio until the worker fetches it)."""
    sid, url, duration = (
        form.get("RecordingSid", ""),
        form.get("RecordingUrl", ""),
        form.get("RecordingDuration", ""),
    )
    if not RECORDING_SID.match(sid) or not url.startswith("https://") or not duration.isdigit():
        raise InvalidWebhook("RecordingSid, RecordingUrl or RecordingDuration missing or malformed")
    return Recording(sid=sid, url=url, duration=int(duration[:6]), finished_with=form.get("Digits", "")[:1])


@status_router.post("/status", summary="Call status callback")
async def call_status(
    request: Request, form: TwilioForm, conversations: Conversations, callbacks: Callbacks
) -> Response:
    """Record call completion and duration; a call-back's URL names its outbox row, which records the call
    if the worker could not (a call-back nobody answered never reaches `POST /twilio/voice`)."""
    call_sid = _call_sid(form)
    status = form.get("CallStatus", "")
    if not status or len(status) > 16:
        raise InvalidWebhook("CallStatus missing or malformed")
    try:
        outbox_id = named_row(request.query_params.getlist("outbox"))
    except ValueError:
        raise InvalidWebhook("outbox id malformed") from None
    if outbox_id is not None:
        await callbacks.placed(outbox_id, call_sid)
    raw_duration = form.get("CallDuration", "")
    duration = int(raw_duration) if raw_duration.isdigit() and len(raw_duration) < 9 else None
    try:
        await conversations.call_status(call_sid, status, duration)
    except CallNotFound:
        # A call whose first webhook was turned away or missed the deadline (or a call-back never answered):
        # no session to record, but a call-back's row is. A 4xx would only show as an error in Twilio's
        # debugger.
        await conversations.db.commit()
        log.info("call %s: %s, but it was never answered here", call_sid, status)
        return Response(status_code=204)
    log.info("call %s: %s after %s s", call_sid, status, duration if duration is not None else "?")
    return Response(status_code=204)


async def _answer(
    result: Turn | Replay, conversations: ConversationService, renderer: VoiceRenderer, base_url: str
) -> Response:
    if isinstance(result, Replay):
        return Response(result.response, media_type=TWIML)
    action = f"{base_url}/twilio/voice/sessions/{result.session.id}/steps/{result.number + 1}"
    if result.session.language:
        # Lets an apology be spoken in the caller's language even when the database is unreachable.
        action += f"?lang={result.session.language}"
    body = await conversations.commit(result, renderer.render(result.events, action))
    return Response(body, media_type=TWIML)
