"""Subscriptions to community news and the broadcasts sent to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class Subscription(Base):
    """A caller who asked for news by SMS, in one language (the number lives encrypted in `contacts`)."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller_id: Mapped[int] = mapped_column(ForeignKey("callers.id", ondelete="CASCADE"), unique=True)
    language: Mapped[str] = mapped_column(String(16))
    community: Mapped[str | None] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    """Where they subscribed: sms (keyword) or voice (library news menu)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Broadcast(Base):
    """One news item, with text per language, optionally for one community."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    texts: Mapped[dict[str, str]] = mapped_column(JSON)
    community: Mapped[str | None] = mapped_column(String(64))
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    """Messages queued when it was created; sent, delivered and failed are counted from the outbox."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
