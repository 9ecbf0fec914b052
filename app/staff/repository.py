"""Every query about staff accounts and their sessions."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.staff.models import StaffSession, StaffUser


class StaffRepository:
    """Accounts by e-mail or id, and sessions by id."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def by_email(self, email: str) -> StaffUser | None:
        """The account with this (lower-cased) e-mail."""
        return await self.db.scalar(select(StaffUser).where(StaffUser.email == email))

    async def by_id(self, user_id: int) -> StaffUser | None:
        """The account with this id."""
        return await self.db.get(StaffUser, user_id)

    async def all(self) -> list[StaffUser]:
        """Every account, oldest first."""
        return list(await self.db.scalars(select(StaffUser).order_by(StaffUser.id)))

    async def session(self, session_id: str) -> StaffSession | None:
        """The session whose token hashes to ``session_id``."""
        return await self.db.get(StaffSession, session_id)

    async def add(self, row: StaffUser | StaffSession) -> None:
        """Insert an account or a session."""
        self.db.add(row)
        await self.db.flush()

    async def delete_session(self, session_id: str) -> None:
        """End one session."""
        await self.db.execute(delete(StaffSession).where(StaffSession.id == session_id))

    async def delete_sessions_of(self, user_id: int) -> None:
        """End every session of an account."""
        await self.db.execute(delete(StaffSession).where(StaffSession.user_id == user_id))
