"""Requests per API key per minute, counted in the database so the limit holds across workers."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Final

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys.deps import StatsReader
from app.apikeys.models import ApiKey
from app.db.base import utcnow
from app.deps import SessionDep, SettingsDep
from app.stats.errors import RateLimited
from app.throttle.service import ThrottleKeys, ThrottleService

BUCKET: Final = "stats_api"
WINDOW: Final = timedelta(minutes=1)


class RateLimit:
    """A sliding window: a request is admitted when fewer than ``limit`` were admitted in the last minute."""

    def __init__(
        self,
        db: AsyncSession,
        keys: ThrottleKeys,
        limit: int,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.keys = keys
        self.limit = limit
        self.clock = clock
        self.throttle = ThrottleService(db, keys, clock=clock)

    async def admit(self, api_key_id: int) -> None:
        """Count this request for the key, or raise `RateLimited` saying when the oldest one leaves."""
        # Holding the key's row makes check-then-record atomic per key across workers (PostgreSQL row
        # lock; SQLite transactions already take the write lock when they begin).
        await self.db.execute(select(ApiKey.id).where(ApiKey.id == api_key_id).with_for_update())
        value = str(api_key_id)
        # Only this key's rows: under the key's lock no other request touches them.
        await self.throttle.prune_value(BUCKET, value, WINDOW)
        if await self.throttle.count(BUCKET, value, WINDOW) >= self.limit:
            raise RateLimited(self.limit, await self._retry_after(value))
        await self.throttle.record(BUCKET, value)

    async def _retry_after(self, value: str) -> int:
        """Whole seconds until the oldest counted request leaves the window (at least 1)."""
        oldest = await self.throttle.oldest(BUCKET, value, WINDOW)
        if oldest is None:  # pragma: no cover - only reached when the window holds `limit` requests
            return math.ceil(WINDOW.total_seconds())
        return max(1, math.ceil((oldest + WINDOW - self.clock()).total_seconds()))


async def limited_reader(key: StatsReader, request: Request, db: SessionDep, settings: SettingsDep) -> ApiKey:
    """The caller's `stats:read` key (401/403 first), once this request is within the key's rate."""
    limit = RateLimit(db, request.app.state.throttle_keys, settings.stats_requests_per_minute)
    try:
        await limit.admit(key.id)
    except RateLimited:
        await db.commit()  # a refusal records nothing but keeps the pruning, and releases the lock
        raise
    await db.commit()
    return key


StatsPartner = Annotated[ApiKey, Depends(limited_reader)]
"""A `stats:read` key within its rate limit."""
