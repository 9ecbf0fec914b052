"""A caller, known only by a keyed pseudonym of their phone number."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class Caller(Base):
    """Someone who called or texted; no phone number is ever stored here."""

    __tablename__ = "callers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    language: Mapped[str | None] = mapped_column(String(16))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Said STOP (or ALTO...): nothing is sent to this caller until they opt back in."""
