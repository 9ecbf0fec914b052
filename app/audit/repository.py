"""Every query about the audit log: inserts and reads only."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry


class AuditRepository:
    """Appends entries and pages through them, newest first; there is no update or delete here."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, entry: AuditEntry) -> AuditEntry:
        """Insert one entry."""
        self.db.add(entry)
        await self.db.flush()
        return entry

    async def page(self, offset: int, limit: int) -> list[AuditEntry]:
        """Entries newest first."""
        query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        return list(await self.db.scalars(query.offset(offset).limit(limit)))

    async def total(self) -> int:
        """How many entries exist."""
        return int(await self.db.scalar(select(func.count()).select_from(AuditEntry)) or 0)
