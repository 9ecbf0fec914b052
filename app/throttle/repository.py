"""Every query about throttle events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.throttle.models import ThrottleEvent


class ThrottleRepository:
    """Attempts by bucket and hashed key."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, bucket: str, key: str, at: datetime) -> None:
        """Store one attempt."""
        self.db.add(ThrottleEvent(bucket=bucket, key=key, created_at=at))
        await self.db.flush()

    async def count_since(self, bucket: str, key: str, since: datetime) -> int:
        """Attempts in the bucket for the key at or after ``since``."""
        query = select(func.count()).where(
            ThrottleEvent.bucket == bucket, ThrottleEvent.key == key, ThrottleEvent.created_at >= since
        )
        return int(await self.db.scalar(query) or 0)

    async def oldest_since(self, bucket: str, key: str, since: datetime) -> datetime | None:
        """The earliest attempt in the bucket for the key at or after ``since``."""
        query = select(func.min(ThrottleEvent.created_at)).where(
            ThrottleEvent.bucket == bucket, ThrottleEvent.key == key, ThrottleEvent.created_at >= since
        )
        return await self.db.scalar(query)

    async def delete_key_before(self, bucket: str, key: str, cutoff: datetime) -> None:
        """Forget one key's attempts older than ``cutoff``; other keys' rows (and locks) are left alone."""
        await self.db.execute(
            delete(ThrottleEvent).where(
                ThrottleEvent.bucket == bucket, ThrottleEvent.key == key, ThrottleEvent.created_at < cutoff
            )
        )

    async def delete_before(self, bucket: str, cutoff: datetime) -> int:
        """Forget the bucket's attempts older than ``cutoff``; returns how many went."""
        result = await self.db.execute(
            delete(ThrottleEvent).where(ThrottleEvent.bucket == bucket, ThrottleEvent.created_at < cutoff)
        )
        return int(getattr(result, "rowcount", 0) or 0)
