"""Queue SMS and call-backs inside the caller's own transaction, only to consenting, reachable callers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import AuditService
from app.contacts.models import ContactPurpose
from app.contacts.repository import ContactRepository
from app.db.base import utcnow
from app.errors import RimayError
from app.outbox.models import MessageKind, MessageStatus, OutboxMessage
from app.outbox.repository import OutboxRepository
from app.settings import Settings

log = logging.getLogger(__name__)
CAP_WINDOW = timedelta(hours=24)
MAX_BODY = 1600
"""Twilio refuses longer message bodies."""
SMS_PURPOSES = frozenset({ContactPurpose.SMS_REPLIES, ContactPurpose.NEWS})
_RANK = {
    MessageStatus.SENDING: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.UNDELIVERED: 2,
    MessageStatus.FAILED: 2,
}
"""Delivery reports only move a row forward: a late `sent` never overwrites `delivered`."""


class MessageNotFound(RimayError):
    """A delivery report names a message this service never sent."""

    status_code = 404
    code = "message_not_found"


class OutboxMismatch(RimayError):
    """A delivery report names a row (in its URL) that holds another message, or its sid another row."""

    status_code = 409
    code = "outbox_mismatch"


class Outbox:
    """Adds rows and flushes; the service that calls it commits them with its own change."""

    def __init__(
        self, db: AsyncSession, settings: Settings, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.rows = OutboxRepository(db)
        self.contacts = ContactRepository(db)

    async def enqueue_sms(
        self,
        caller_id: int,
        body: str,
        *,
        purpose: ContactPurpose = ContactPurpose.SMS_REPLIES,
        broadcast_id: int | None = None,
        case_id: int | None = None,
        not_before: datetime | None = None,
    ) -> OutboxMessage | None:
        """Queue a text to a caller; None (and a log line saying why) if they cannot receive it."""
        if not body.strip() or len(body) > MAX_BODY:
            raise ValueError(f"an SMS body needs 1 to {MAX_BODY} characters")
        if purpose not in SMS_PURPOSES:
            raise ValueError(f"an SMS is sent for sms_replies or news, not {purpose}")
        return await self._enqueue(
            MessageKind.SMS,
            caller_id,
            purpose,
            not_before,
            body=body,
            broadcast_id=broadcast_id,
            case_id=case_id,
        )

    async def enqueue_call(
        self, caller_id: int, flow_id: str, *, not_before: datetime | None
    ) -> OutboxMessage | None:
        """Queue a call-back that runs a flow; None (and a log line saying why) if not allowed."""
        return await self._enqueue(
            MessageKind.CALL, caller_id, ContactPurpose.CALLBACK, not_before, call_flow=flow_id
        )

    async def record_delivery(
        self,
        sid: str,
        status: MessageStatus | None,
        error_code: str | None = None,
        outbox_id: int | None = None,
    ) -> str:
        """Apply a delivery report (None: one that changes nothing) and return the row's status.

        ``outbox_id`` comes from the status callback URL: it finds the row when the report comes
        before the worker recorded the sid (or after its answer was lost).
        """
        error = f"twilio error {error_code}" if error_code else None
        row = await self.rows.by_sid(sid)
        if row is None and outbox_id is not None:
            attached = await self._attach(outbox_id, sid, status, error)
            if attached is not None:
                return attached
            row = await self.rows.by_sid(sid)  # a report for the same message attached it meanwhile
        if row is None:
            raise MessageNotFound(sid)
        if outbox_id is not None and row.id != outbox_id:
            # Twilio sent it for one row, yet another row holds its sid (a lookup matched the wrong
            # message): neither row is touched, an operator compares them.
            log.warning("outbox %s: delivery report names row %s; nothing changed", row.id, outbox_id)
            raise OutboxMismatch(sid)
        if status is None:
            return row.status
        earlier = [known for known, rank in _RANK.items() if rank < _RANK[status]]
        if not await self.rows.report(sid, status, earlier, error):
            return row.status
        log.info("outbox %s: %s", row.id, status.value)
        return status.value

    async def record_placed_call(self, outbox_id: int, call_sid: str) -> OutboxMessage | None:
        """A call-back's own webhook names its row (``?outbox=ID``): record the CallSid if nothing has.

        Twilio calls the hotline when the person answers, and posts the call's status when it ends, so this
        settles a call-back whose create request timed out even when Twilio's call list lags. The row now
        attached, or None: already recorded (the usual case) or a row that holds another call (logged).
        """
        if await self.rows.attach(outbox_id, call_sid, MessageStatus.SENT, None, MessageKind.CALL):
            log.info("outbox %s: call-back recorded from its own webhook", outbox_id)
            return await self.db.get(OutboxMessage, outbox_id)
        row = await self.rows.by_sid(call_sid)
        if row is None or row.id != outbox_id:
            log.warning(
                "outbox %s: a call's webhook names this row, which holds another call or none", outbox_id
            )
        return None

    async def _attach(
        self, outbox_id: int, sid: str, status: MessageStatus | None, error: str | None
    ) -> str | None:
        """Record the reported sid on the row the URL names; None if a concurrent report just did."""
        reported = status or MessageStatus.SENT  # queued, accepted...: Twilio has it, so it was sent
        if await self.rows.attach(outbox_id, sid, reported, error):
            row = await self.db.get(OutboxMessage, outbox_id)
            if row is not None and row.case_id is not None:
                # The worker records this only if it records the sid itself, so it is logged once.
                await AuditService(self.db, clock=self.clock).record(
                    "system", "answer_sms_sent", case_id=row.case_id
                )
            log.info("outbox %s: %s (reported before the worker recorded it)", outbox_id, reported.value)
            return reported.value
        target = await self.db.get(OutboxMessage, outbox_id)
        if target is None:
            # No such row (never ours, or deleted since): like a sid we never sent.
            raise MessageNotFound(sid)
        if target.provider_sid == sid:
            return None
        # The row holds another message's sid, or is a call: a second message for one row, or a URL
        # that does not match the report. Nothing changes; the answer and the log say so.
        log.warning(
            "outbox %s: delivery report for a message the row does not hold; nothing changed", outbox_id
        )
        raise OutboxMismatch(sid)

    async def _opted_out(self, caller_id: int) -> bool | None:
        """Whether the caller said STOP; None when there is no such caller."""
        return await self.rows.caller_opted_out(caller_id)

    async def _enqueue(
        self,
        kind: MessageKind,
        caller_id: int,
        purpose: ContactPurpose,
        not_before: datetime | None,
        **content: str | int | None,
    ) -> OutboxMessage | None:
        now = self.clock()
        refusal = await self._refusal(caller_id, purpose, now)
        if refusal is not None:
            log.info("outbox: %s for caller %s not queued: %s", kind.value, caller_id, refusal)
            return None
        message = OutboxMessage(
            kind=kind,
            purpose=purpose,
            caller_id=caller_id,
            status=MessageStatus.PENDING,
            attempts=0,
            not_before=not_before,
            created_at=now,
            updated_at=now,
            **content,
        )
        self.db.add(message)
        await self.db.flush()
        return message

    async def _refusal(self, caller_id: int, purpose: ContactPurpose, now: datetime) -> str | None:
        """Why nothing may be queued for this caller now, or None."""
        opted_out = await self._opted_out(caller_id)
        if opted_out is None:
            return "unknown caller"
        if opted_out:
            return "opted out"
        contact = await self.contacts.get(caller_id)
        if contact is None or not contact.usable(purpose, now):
            return f"no contact consented to {purpose.value}"
        if await self.rows.count_since(caller_id, now - CAP_WINDOW) >= self.settings.outbound_daily_cap:
            return f"daily cap of {self.settings.outbound_daily_cap} reached"
        return None
