"""Sessions (one call or SMS conversation), their interactions, and processed webhooks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key for a busy hotline.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class CallSession(Base):
    """One conversation on one channel; demographics belong here because phones are shared."""

    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("channel", "provider_id", name="uq_sessions_channel_provider_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    caller_id: Mapped[int | None] = mapped_column(ForeignKey("callers.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    provider_id: Mapped[str] = mapped_column(String(64))
    flow_id: Mapped[str] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[dict[str, object]] = mapped_column(JSON)
    step: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")
    gender: Mapped[str | None] = mapped_column(String(32))
    age_band: Mapped[str | None] = mapped_column(String(32))
    community: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    pending_pages: Mapped[list[str] | None] = mapped_column(JSON)
    """SMS pages of the last reply not sent yet; the caller asks for each with the "more" key."""
    stats: Mapped[dict[str, object] | None] = mapped_column(JSON)
    """What this session added to the statistics' rollups, so a later change can move it (app.stats)."""


class Interaction(Base):
    """One step of a session: a node reached or an input given, with the session's demographics."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(8))
    flow_id: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))
    event: Mapped[str] = mapped_column(String(16))
    value: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(24))
    language: Mapped[str | None] = mapped_column(String(16))
    gender: Mapped[str | None] = mapped_column(String(32))
    age_band: Mapped[str | None] = mapped_column(String(32))
    community: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """The answer given to one step of a session, replayed verbatim when Twilio redelivers it."""

    __tablename__ = "webhook_deliveries"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
