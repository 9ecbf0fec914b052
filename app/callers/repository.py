"""Every query about callers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.callers.models import Caller
from app.db.upsert import insert_ignoring_conflicts


class CallerRepository:
    """Callers by pseudonym."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def touch(self, pseudonym: str, now: datetime) -> Caller:
        """Return the caller with this pseudonym, creating them on first contact."""
        await insert_ignoring_conflicts(
            self.db, Caller, {"pseudonym": pseudonym, "first_seen": now, "last_seen": now}, ["pseudonym"]
        )
        await self.db.execute(update(Caller).where(Caller.pseudonym == pseudonym).values(last_seen=now))
        caller = await self.db.scalar(select(Caller).where(Caller.pseudonym == pseudonym))
        if caller is None:  # pragma: no cover - the row was inserted or existed a moment ago
            raise LookupError("caller vanished during insert")
        return caller

    async def remember_language(self, caller_id: int, language: str) -> None:
        """Remember a caller's chosen language for their next call."""
        await self.db.execute(update(Caller).where(Caller.id == caller_id).values(language=language))
