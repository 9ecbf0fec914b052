"""Every query about the outbox."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.callers.models import Caller
from app.db.base import UTCDateTime, utcnow
from app.outbox.models import MAX_ERROR, MessageKind, MessageStatus, OutboxMessage
from app.privacy.masking import mask_phone_numbers

Status = MessageStatus


@dataclass(frozen=True)
class Job:
    """A claimed row, detached from its session: what the worker needs to send it."""

    id: int
    kind: str
    purpose: str
    caller_id: int
    body: str | None
    call_flow: str | None
    attempts: int
    case_id: int | None = None
    claimed_at: datetime | None = None
    ambiguous_since: datetime | None = None
    """Set when an earlier attempt may have reached Twilio: check with Twilio before sending again."""


def short_error(text: str) -> str:
    """An error fit for `last_error`: masked (never a number) and short."""
    return mask_phone_numbers(" ".join(text.split()))[:MAX_ERROR]


def _due() -> ColumnElement[datetime]:
    return func.coalesce(OutboxMessage.next_attempt_at, OutboxMessage.not_before, OutboxMessage.created_at)


class OutboxRepository:
    """Outbox rows: enqueue checks, claiming, outcomes and delivery reports."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def caller_opted_out(self, caller_id: int, *, lock: bool = True) -> bool | None:
        """Whether the caller said STOP (None: no such caller); ``lock`` holds the caller until commit."""
        query = select(Caller.opted_out).where(Caller.id == caller_id)
        # The lock serialises enqueues for one caller on PostgreSQL, so the daily cap holds under races.
        return await self.db.scalar(query.with_for_update() if lock else query)

    async def count_since(self, caller_id: int, since: datetime) -> int:
        """Rows for this caller created since a moment, not counting cancelled ones."""
        query = select(func.count()).where(
            OutboxMessage.caller_id == caller_id,
            OutboxMessage.created_at > since,
            OutboxMessage.status != Status.CANCELLED,
        )
        return int(await self.db.scalar(query) or 0)

    async def cancel_pending(self, caller_id: int, reason: str, *, purpose: str | None = None) -> int:
        """Cancel the caller's rows not yet picked up (scheduled ones included); how many."""
        query = (
            update(OutboxMessage)
            .where(OutboxMessage.caller_id == caller_id, OutboxMessage.status == Status.PENDING)
            .values(status=Status.CANCELLED, last_error=short_error(reason), updated_at=utcnow())
        )
        if purpose is not None:
            query = query.where(OutboxMessage.purpose == purpose)
        return int((await self.db.execute(query)).rowcount)  # type: ignore[attr-defined]

    async def claim(self, now: datetime, batch: int) -> list[Job]:
        """Mark due rows `sending`; SKIP LOCKED lets several workers claim disjoint rows (PostgreSQL)."""
        rows = (
            await self.db.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.status == Status.PENDING, _due() <= now)
                .order_by(_due(), OutboxMessage.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        ).all()
        for row in rows:
            row.status = Status.SENDING
            row.claimed_at = now
            row.attempts += 1
            row.updated_at = now
        await self.db.flush()
        return [
            Job(
                row.id,
                row.kind,
                row.purpose,
                row.caller_id,
                row.body,
                row.call_flow,
                row.attempts,
                row.case_id,
                now,
                row.ambiguous_since,
            )
            for row in rows
        ]

    async def fail_stale(self, claimed_before: datetime, now: datetime, reason: str) -> list[int]:
        """Fail rows left `sending` by a worker that died; their outcome is unknown, so never re-send."""
        result = await self.db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == Status.SENDING, OutboxMessage.claimed_at < claimed_before)
            .values(
                status=Status.FAILED,
                last_error=short_error(reason),
                updated_at=now,
                # The lost attempt may have reached Twilio: an operator's retry checks there first.
                ambiguous_since=func.coalesce(OutboxMessage.ambiguous_since, OutboxMessage.claimed_at),
            )
            .returning(OutboxMessage.id)
        )
        return sorted(result.scalars())

    async def finish(
        self,
        message_id: int,
        status: MessageStatus,
        now: datetime,
        *,
        error: str | None = None,
        retry_at: datetime | None = None,
        sid: str | None = None,
        expected: Collection[MessageStatus] = (Status.SENDING,),
        ambiguous_since: datetime | None = None,
    ) -> bool:
        """Record a send's outcome if the row is still as the worker left it; False if it moved on.

        A row whose sid a delivery report already recorded has moved on: the report knows more.
        ``ambiguous_since`` marks the row for a check with Twilio (the earliest such attempt is kept).
        """
        values: dict[str, object] = {"status": status, "updated_at": now, "next_attempt_at": retry_at}
        if error is not None:
            values["last_error"] = short_error(error)
        if sid is not None:
            values.update(provider_sid=sid, sent_at=now, last_error=None)
        if ambiguous_since is not None:
            since = literal(ambiguous_since, UTCDateTime())
            values["ambiguous_since"] = func.coalesce(OutboxMessage.ambiguous_since, since)
        result = await self.db.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.status.in_(list(expected)),
                OutboxMessage.provider_sid.is_(None),
            )
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def recorded_sids(self, sids: Collection[str]) -> dict[str, int]:
        """Which of these sids rows already hold, and which row holds each."""
        if not sids:
            return {}
        rows = await self.db.execute(
            select(OutboxMessage.provider_sid, OutboxMessage.id).where(OutboxMessage.provider_sid.in_(sids))
        )
        return {str(sid): int(row_id) for sid, row_id in rows}

    async def attach(
        self,
        message_id: int,
        sid: str,
        status: MessageStatus,
        error: str | None,
        kind: MessageKind = MessageKind.SMS,
    ) -> bool:
        """Give a row of ``kind`` without a sid the sid and status a webhook names; False if it has one
        (or there is no such row).

        Whatever the row's status (sending, pending after a lost answer, failed as unknown, cancelled
        since), the webhook proves Twilio took the message or call: the row is sent and no longer retried.
        """
        now = utcnow()
        result = await self.db.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.kind == kind,
                OutboxMessage.provider_sid.is_(None),
            )
            .values(
                status=status,
                provider_sid=sid,
                sent_at=func.coalesce(OutboxMessage.sent_at, literal(now, UTCDateTime())),
                next_attempt_at=None,
                last_error=short_error(error) if error else None,
                updated_at=now,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def by_sid(self, sid: str) -> OutboxMessage | None:
        """The row Twilio knows by this MessageSid or CallSid."""
        return await self.db.scalar(select(OutboxMessage).where(OutboxMessage.provider_sid == sid))

    async def report(
        self, sid: str, status: MessageStatus, after: Collection[MessageStatus], error: str | None
    ) -> bool:
        """Move a row to a reported status only from an earlier one, atomically (reports race)."""
        values: dict[str, object] = {"status": status, "updated_at": utcnow()}
        if error is not None:
            values["last_error"] = short_error(error)
        result = await self.db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.provider_sid == sid, OutboxMessage.status.in_(list(after)))
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def listing(self, status: MessageStatus | None, limit: int) -> list[OutboxMessage]:
        """The newest rows, optionally of one status."""
        query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
        if status is not None:
            query = query.where(OutboxMessage.status == status)
        return list((await self.db.scalars(query)).all())

    async def requeue(self, message_id: int, now: datetime) -> bool:
        """Put a failed row back in the queue with fresh attempts; False unless it was failed."""
        result = await self.db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == Status.FAILED)
            .values(
                status=Status.PENDING,
                attempts=0,
                next_attempt_at=now,
                claimed_at=None,
                provider_sid=None,
                last_error=None,
                updated_at=now,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
