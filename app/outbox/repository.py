"""Every query about the outbox."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.callers.models import Caller
from app.db.base import utcnow
from app.outbox.models import MAX_ERROR, MessageStatus, OutboxMessage
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
            )
            for row in rows
        ]

    async def fail_stale(self, claimed_before: datetime, now: datetime, reason: str) -> list[int]:
        """Fail rows left `sending` by a worker that died; their outcome is unknown, so never re-send."""
        result = await self.db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == Status.SENDING, OutboxMessage.claimed_at < claimed_before)
            .values(status=Status.FAILED, last_error=short_error(reason), updated_at=now)
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
    ) -> bool:
        """Record a send's outcome if the row is still as the worker left it; False if it moved on."""
        values: dict[str, object] = {"status": status, "updated_at": now, "next_attempt_at": retry_at}
        if error is not None:
            values["last_error"] = short_error(error)
        if sid is not None:
            values.update(provider_sid=sid, sent_at=now, last_error=None)
        result = await self.db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status.in_(list(expected)))
            .values(**values)
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
