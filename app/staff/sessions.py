"""Staff sessions: a random token in the cookie, only its SHA-256 in the table. The service only flushes."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.staff.errors import SessionExpired
from app.staff.models import StaffSession, StaffUser
from app.staff.repository import StaffRepository

TOKEN_BYTES: Final = 32
TOUCH_INTERVAL: Final = timedelta(seconds=30)
"""`last_seen_at` is written at most this often, so each page view does not cost a write."""


def session_id(token: str) -> str:
    """Hex SHA-256 of a cookie token: the session's primary key."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    """A live session and its account."""

    session: StaffSession
    user: StaffUser

    @property
    def complete(self) -> bool:
        """True once every factor the account needs was given."""
        return self.session.second_factor_done


class StaffSessions:
    """Starts, resolves and ends sessions with an idle timeout and an absolute lifetime."""

    def __init__(
        self,
        db: AsyncSession,
        *,
        idle: timedelta,
        lifetime: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.users = StaffRepository(db)
        self.db = db
        self.idle = idle
        self.lifetime = lifetime
        self.clock = clock

    async def start(self, user: StaffUser, *, second_factor_done: bool, replacing: str | None) -> str:
        """A new token (never the one the browser had: no session fixation); the old one ends."""
        if replacing:
            await self.users.delete_session(session_id(replacing))
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.clock()
        row = StaffSession(
            id=session_id(token),
            user_id=user.id,
            second_factor_done=second_factor_done,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.lifetime,
        )
        await self.users.add(row)
        return token

    async def resolve(self, token: str | None) -> SignedIn:
        """The live session for a cookie token; an expired one is deleted and SessionExpired raised."""
        if not token:
            raise SessionExpired("not signed in")
        row = await self.users.session(session_id(token))
        if row is None:
            raise SessionExpired("unknown session")
        now = self.clock()
        user = await self.users.by_id(row.user_id)
        if user is None or not user.active or now >= row.expires_at or now - row.last_seen_at > self.idle:
            await self.users.delete_session(row.id)
            raise SessionExpired("session expired")
        if now - row.last_seen_at >= TOUCH_INTERVAL:
            row.last_seen_at = now
            await self.db.flush()
        return SignedIn(row, user)

    async def complete(self, signed_in: SignedIn) -> None:
        """Mark the second factor as given, and note the login time."""
        signed_in.session.second_factor_done = True
        signed_in.user.last_login_at = self.clock()
        await self.db.flush()

    async def end(self, token: str | None) -> None:
        """Delete the session of this token, if any."""
        if token:
            await self.users.delete_session(session_id(token))
