"""Count attempts per bucket and key, so repeated failures can be slowed and refused.

Keys are HMAC-SHA256 digests (under a sub-key of the master secret) of the bucket and the value, so an
e-mail, an IP address or a pseudonym never reaches the table. The service only flushes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.privacy.keys import KeyPurpose, derive_key
from app.throttle.repository import ThrottleRepository


class ThrottleKeys:
    """Turns (bucket, value) into the keyed hash that is stored."""

    def __init__(self, master: bytes) -> None:
        self._key = derive_key(master, KeyPurpose.THROTTLE)

    def __call__(self, bucket: str, value: str) -> str:
        """Hex HMAC of the bucket and value; the same value in two buckets gives two keys."""
        message = f"{bucket}\x00{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "ThrottleKeys(<key hidden>)"


class ThrottleService:
    """record / count / prune attempts; callers decide what a bucket and a limit mean."""

    def __init__(
        self, db: AsyncSession, keys: ThrottleKeys, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.events = ThrottleRepository(db)
        self.keys = keys
        self.clock = clock

    async def record(self, bucket: str, value: str) -> None:
        """Count one attempt for ``value`` in ``bucket``."""
        await self.events.add(bucket, self.keys(bucket, value), self.clock())

    async def count(self, bucket: str, value: str, window: timedelta) -> int:
        """Attempts for ``value`` in ``bucket`` within the last ``window``."""
        return await self.events.count_since(bucket, self.keys(bucket, value), self.clock() - window)

    async def oldest(self, bucket: str, value: str, window: timedelta) -> datetime | None:
        """When the earliest attempt for ``value`` still within ``window`` was made."""
        return await self.events.oldest_since(bucket, self.keys(bucket, value), self.clock() - window)

    async def prune_value(self, bucket: str, value: str, window: timedelta) -> None:
        """Delete ``value``'s attempts older than ``window`` in the bucket."""
        await self.events.delete_key_before(bucket, self.keys(bucket, value), self.clock() - window)

    async def prune(self, bucket: str, window: timedelta) -> int:
        """Delete the bucket's attempts older than ``window``: they can no longer count."""
        return await self.events.delete_before(bucket, self.clock() - window)
