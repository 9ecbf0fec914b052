"""Every query about contacts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.contacts.models import Contact


class ContactRepository:
    """Contacts by caller."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, caller_id: int, *, lock: bool = False) -> Contact | None:
        """The caller's contact; ``lock`` holds its row until the transaction ends (PostgreSQL)."""
        query = select(Contact).where(Contact.caller_id == caller_id)
        if lock:
            # A locked read must see the row as it is now, not as this session first loaded it.
            query = query.with_for_update().execution_options(populate_existing=True)
        return await self.db.scalar(query)

    async def insert_if_absent(self, values: dict[str, Any]) -> bool:
        """Insert a contact unless the caller has one (two requests may race); True if inserted."""
        dialect = self.db.get_bind().dialect.name
        builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            builder(Contact)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["caller_id"])
            .returning(Contact.id)
        )
        return (await self.db.scalar(statement)) is not None

    async def delete(self, caller_id: int) -> None:
        """Delete the caller's contact, if any."""
        await self.db.execute(delete(Contact).where(Contact.caller_id == caller_id))

    async def delete_expired(self, now: datetime) -> list[int]:
        """Delete every contact past its deletion time; the callers whose contact went."""
        result = await self.db.execute(
            delete(Contact)
            .where(Contact.expires_at.is_not(None), Contact.expires_at <= now)
            .returning(Contact.caller_id)
        )
        return list(result.scalars())
