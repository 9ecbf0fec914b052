"""One outbound SMS or call, addressed to a caller (never a number) and sent later by the worker."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key for broadcasts.
BigId = BigInteger().with_variant(Integer(), "sqlite")
MAX_ERROR = 200


class MessageKind(StrEnum):
    """What the worker does with a row."""

    SMS = "sms"
    CALL = "call"


class MessageStatus(StrEnum):
    """Where a row is in its life; only `pending` rows are picked up by the worker."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class OutboxMessage(Base):
    """A message or call waiting to be sent, being sent, or done; the number is read at send time."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_caller_id_created_at", "caller_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(String(16))
    """The consent this row relies on (sms_replies, news, callback); checked again before sending."""
    caller_id: Mapped[int] = mapped_column(ForeignKey("callers.id", ondelete="CASCADE"))
    body: Mapped[str | None] = mapped_column(Text)
    call_flow: Mapped[str | None] = mapped_column(String(64))
    broadcast_id: Mapped[int | None] = mapped_column(Integer, index=True)
    case_id: Mapped[int | None] = mapped_column(BigInteger)
    """The case an SMS answers (or announces an answer to): its sending goes into the case's audit log."""
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    last_error: Mapped[str | None] = mapped_column(String(MAX_ERROR))
    """Short and masked: never a phone number."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ambiguous_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the first attempt that may have reached Twilio without an answer started (None: none did).

    Before such a row is sent again, the worker asks Twilio whether it already took the message."""
