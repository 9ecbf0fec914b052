"""Every query about recordings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.privacy.masking import mask_phone_numbers
from app.recordings.models import MAX_ERROR, Recording, RecordingStatus


@dataclass(frozen=True)
class FetchJob:
    """A claimed recording, detached from its session: what the fetcher needs."""

    id: int
    public_id: str
    provider_sid: str
    source_url: str
    attempts: int
    downloaded: bool


def short_error(text: str) -> str:
    """An error fit for `last_error`: masked (never a number) and short."""
    return mask_phone_numbers(" ".join(text.split()))[:MAX_ERROR]


def _due() -> ColumnElement[datetime]:
    return func.coalesce(Recording.next_attempt_at, Recording.created_at)


class RecordingRepository:
    """Recording rows: lookup, claiming and outcomes."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def by_sid(self, sid: str) -> Recording | None:
        """The row Twilio knows by this RecordingSid."""
        return await self.db.scalar(select(Recording).where(Recording.provider_sid == sid))

    async def claim(self, now: datetime, lease_until: datetime, batch: int) -> list[FetchJob]:
        """Lease due rows until ``lease_until``; SKIP LOCKED gives fetchers disjoint rows (PostgreSQL)."""
        rows = (
            await self.db.scalars(
                select(Recording)
                .where(Recording.status == RecordingStatus.PENDING, _due() <= now)
                .order_by(_due(), Recording.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        ).all()
        for row in rows:
            # A lease, not a status: if this fetcher dies, the row is simply due again after it, and
            # fetching twice is harmless (unlike sending an SMS twice).
            row.next_attempt_at = lease_until
            row.claimed_at = now
            row.attempts += 1
        await self.db.flush()
        return [
            FetchJob(r.id, r.public_id, r.provider_sid, r.source_url, r.attempts, r.stored_at is not None)
            for r in rows
        ]

    async def downloaded(self, recording_id: int, now: datetime, size: int, media_type: str) -> None:
        """Record that the file is on disk, before Twilio's copy is deleted."""
        await self.db.execute(
            update(Recording)
            .where(Recording.id == recording_id)
            .values(size_bytes=size, media_type=media_type[:64], stored_at=now)
        )

    async def stored(self, recording_id: int, now: datetime) -> None:
        """Twilio's copy is gone: the local file is now the only one."""
        await self.db.execute(
            update(Recording)
            .where(Recording.id == recording_id)
            .values(
                status=RecordingStatus.STORED, remote_deleted_at=now, next_attempt_at=None, last_error=None
            )
        )

    async def failed(self, recording_id: int, error: str, retry_at: datetime | None) -> None:
        """Wait for another attempt at ``retry_at``, or give up when it is None."""
        status = RecordingStatus.PENDING if retry_at is not None else RecordingStatus.FAILED
        await self.db.execute(
            update(Recording)
            .where(Recording.id == recording_id)
            .values(status=status, next_attempt_at=retry_at, last_error=short_error(error))
        )
