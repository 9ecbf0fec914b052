"""A call recording: where Twilio holds it until the worker stores it locally and deletes it there."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow
from app.sessions.models import BigId

MAX_ERROR = 200


class RecordingStatus(StrEnum):
    """Where a recording is; only `pending` rows are picked up by the fetcher."""

    PENDING = "pending"
    STORED = "stored"
    FAILED = "failed"
    DELETED = "deleted"


class Recording(Base):
    """One recording; the file is named by ``public_id``, never by anything Twilio or the caller knows."""

    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"), index=True)
    provider_sid: Mapped[str] = mapped_column(String(34), unique=True)
    source_url: Mapped[str] = mapped_column(String(255))
    """Twilio's RecordingUrl, checked against the allow-list; it holds no number and no credentials."""
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=RecordingStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(MAX_ERROR))
    """Short and masked: never a phone number or a URL."""
    media_type: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the file was written; set before Twilio's copy is deleted, so it is never fetched twice."""
    remote_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
