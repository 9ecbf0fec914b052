"""The append-only audit log: who did what, to which case, and when. The service only flushes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.audit.repository import AuditRepository
from app.db.base import utcnow
from app.staff.models import StaffUser

PAGE_SIZE: Final = 50
DETAIL_MAX: Final = 255
UNKNOWN_ACTOR: Final = "unknown"
"""The actor of a failed login for an address with no account: typed addresses are not kept."""


class AuditAction(StrEnum):
    """What happened; case pages add their own (viewed, assigned, answered, closed...)."""

    LOGIN_OK = "login_ok"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    TOTP_ENROLLED = "totp_enrolled"
    USER_CREATED = "user_created"
    USER_DEACTIVATED = "user_deactivated"


@dataclass(frozen=True)
class AuditPage:
    """One page of the log, newest first."""

    entries: list[AuditEntry]
    page: int
    pages: int
    total: int


class AuditService:
    """Appends entries and reads them back; no code path changes or removes one."""

    def __init__(self, db: AsyncSession, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.entries = AuditRepository(db)
        self.clock = clock

    async def record(
        self, actor: StaffUser | str, action: str, case_id: int | None = None, detail: str | None = None
    ) -> AuditEntry:
        """Append an entry; ``actor`` is a staff user, or a word such as "system" or "caller"."""
        if not action or len(action) > 32:
            raise ValueError(f"an audit action is 1 to 32 characters, not {action!r}")
        user_id, name = (actor.id, actor.email) if isinstance(actor, StaffUser) else (None, actor)
        entry = AuditEntry(
            at=self.clock(),
            user_id=user_id,
            actor=name[:254],
            action=action,
            case_id=case_id,
            detail=None if detail is None else detail[:DETAIL_MAX],
        )
        return await self.entries.add(entry)

    async def page(self, page: int = 1, size: int = PAGE_SIZE) -> AuditPage:
        """Page ``page`` (from 1) of the log, newest first; a page past the end is empty."""
        page = max(page, 1)
        total = await self.entries.total()
        entries = await self.entries.page((page - 1) * size, size)
        return AuditPage(entries=entries, page=page, pages=max(1, -(-total // size)), total=total)
