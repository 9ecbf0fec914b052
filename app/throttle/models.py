"""One row per counted attempt (a failed login, a wrong case code), kept only as long as a window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow
from app.sessions.models import BigId


class ThrottleEvent(Base):
    """An attempt in a bucket; ``key`` is a keyed hash (of an e-mail, IP or pseudonym), never the value."""

    __tablename__ = "throttle_events"
    __table_args__ = (Index("ix_throttle_events_bucket_key_created_at", "bucket", "key", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
