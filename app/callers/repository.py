"""Every query about callers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.callers.models import Caller


class CallerRepository:
    """Callers by pseudonym."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def touch(self, pseudonym: str, now: datetime) -> Caller:
        """Return the caller with this pseudonym, creating them on first contact (one statement)."""
        postgres = self.db.get_bind().dialect.name == "postgresql"
        statement = (postgresql.insert if postgres else sqlite.insert)(Caller).values(
            pseudonym=pseudonym, first_seen=now, last_seen=now
        )
        # Two first calls from one phone at once: one inserts, the other updates last_seen; both get the row.
        upsert = statement.on_conflict_do_update(
            index_elements=[Caller.pseudonym], set_={"last_seen": statement.excluded.last_seen}
        ).returning(Caller)
        caller = await self.db.scalar(upsert, execution_options={"populate_existing": True})
        if caller is None:  # pragma: no cover - an upsert with RETURNING always returns its row
            raise LookupError("caller upsert returned nothing")
        return caller

    async def remember_language(self, caller_id: int, language: str) -> None:
        """Remember a caller's chosen language for their next call."""
        await self.db.execute(update(Caller).where(Caller.id == caller_id).values(language=language))
