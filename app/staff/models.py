"""Staff who sign in to the web view, and their sessions; no caller data lives here."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, LargeBinary, String, true
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow
from app.sessions.models import BigId


class Role(StrEnum):
    """What a staff member may do: managers work cases; admins also run users, keys and broadcasts."""

    MANAGER = "manager"
    ADMIN = "admin"


class StaffUser(Base):
    """A case manager or admin; the password is kept only as an argon2id hash."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    """Lower-cased; staff addresses are not caller data."""
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.MANAGER)
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The TOTP seed, encrypted under a key derived from the master secret; None until enrolled."""
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffSession(Base):
    """A signed-in browser; the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    second_factor_done: Mapped[bool] = mapped_column(Boolean, default=False)
    """False while a password was right but the TOTP code is still owed."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """The absolute end of the session, however active it is."""
