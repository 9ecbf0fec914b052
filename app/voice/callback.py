"""Missed-call call-back: reject the call (free for the caller), then call back through the outbox."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from twilio.twiml.voice_response import VoiceResponse

from app.callers.models import Caller
from app.contacts.models import ContactPurpose
from app.contacts.service import ContactService
from app.db.base import utcnow
from app.flows.events import RunState
from app.outbox.models import MessageKind, MessageStatus, OutboxMessage
from app.outbox.service import Outbox
from app.sessions.models import CallSession
from app.sessions.repository import SessionRepository
from app.sessions.service import Channel
from app.settings import Settings

log = logging.getLogger(__name__)
REJECTED = "callback"
"""Status of a session whose call was rejected so the hotline could call back."""


class CallbackService:
    """Decides whether a call can be called back and, if so, queues the call-back with the rejection."""

    def __init__(
        self, db: AsyncSession, settings: Settings, contacts: ContactService, outbox: Outbox
    ) -> None:
        self.db = db
        self.settings = settings
        self.contacts = contacts
        self.outbox = outbox
        self.sessions = SessionRepository(db)

    async def reject_and_call_back(
        self, call_sid: str, caller: Caller, e164: str, flow_id: str
    ) -> str | None:
        """The <Reject> TwiML after queuing a call-back, or None when the call must be answered instead."""
        now = utcnow()
        window = timedelta(hours=self.settings.callback_window_hours)
        if (
            caller.opted_out
            or await self._called_back_since(caller.id, now - window)
            or await self._busy(now)
        ):
            return None  # answering costs the caller, but it is better than no service at all
        await self.contacts.remember(caller.id, e164, ContactPurpose.CALLBACK, expires_at=now + window)
        queued = await self.outbox.enqueue_call(
            caller.id, flow_id, not_before=now + timedelta(seconds=self.settings.callback_delay_seconds)
        )
        if queued is None:
            await self.contacts.drop_purpose(caller.id, ContactPurpose.CALLBACK)
            return None
        response = VoiceResponse()
        response.reject(reason="busy")
        twiml = str(response)
        session = CallSession(
            id=secrets.token_hex(16),
            caller_id=caller.id,
            channel=Channel.VOICE,
            provider_id=call_sid,
            flow_id=flow_id,
            language=caller.language,
            state=RunState(node="", ended=True).model_dump(),
            step=0,
            status=REJECTED,
            started_at=now,
            updated_at=now,
            ended_at=now,
        )
        self.sessions.add(session)
        await self.db.flush()
        await self.sessions.add_delivery(session.id, 0, twiml)
        log.info("call rejected for a call-back (outbox %s)", queued.id)
        return twiml

    async def placed(self, outbox_id: int, call_sid: str) -> None:
        """A call-back's webhook names its outbox row: record the call there if the worker could not (its
        answer from Twilio was lost), and delete the number, as the worker does once a call-back is placed.
        """
        row = await self.outbox.record_placed_call(outbox_id, call_sid)
        if row is not None and row.purpose == ContactPurpose.CALLBACK:
            await self.contacts.drop_purpose(row.caller_id, ContactPurpose.CALLBACK)

    async def _called_back_since(self, caller_id: int, since: datetime) -> bool:
        """One call-back per caller per window, counting any not cancelled."""
        count = await self.db.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.caller_id == caller_id,
                OutboxMessage.kind == MessageKind.CALL,
                OutboxMessage.created_at >= since,
                OutboxMessage.status != MessageStatus.CANCELLED,
            )
        )
        return bool(count)

    async def _busy(self, now: datetime) -> bool:
        """The global rate: at most N call-backs queued per minute across all callers."""
        count = await self.db.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.kind == MessageKind.CALL,
                OutboxMessage.created_at >= now - timedelta(minutes=1),
            )
        )
        return (count or 0) >= self.settings.callback_max_per_minute
