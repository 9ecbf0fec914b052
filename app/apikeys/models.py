"""Partner API keys: only a SHA-256 of each key is stored, next to a short public prefix."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow

SCOPES: Final[tuple[str, ...]] = ("results:read", "stats:read")
"""Every scope a key can be granted; an issue adding a partner endpoint adds its scope here."""

NAME_MAX_LENGTH: Final = 100


class ApiKey(Base):
    """A key issued to one partner; revoked keys stay, so listings and logs keep their history."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH))
    """Who the key is for (an agency, an NGO, a company)."""
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    """The public part of the key, safe to show in listings and logs."""
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """Hex SHA-256 of the whole key: keys are random enough that no slow hash is needed."""
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def revoked(self) -> bool:
        """True once an operator revoked the key."""
        return self.revoked_at is not None
