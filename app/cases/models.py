"""Cases: a caller's question (and follow-ups), the staff's answers and notes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow
from app.sessions.models import BigId


class CaseStatus(StrEnum):
    """Where a case is in the queue."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    CLOSED = "closed"


class ReplyBy(StrEnum):
    """How the caller chose to get the answer."""

    CALL = "call"
    """She calls again (or her code is entered from another phone): nothing about her is stored."""
    SMS = "sms"
    """By text message: needs consent and an encrypted contact."""


class AnswerKind(StrEnum):
    """What a case manager gave as an answer."""

    TEXT = "text"
    VOICE = "voice"


class Case(Base):
    """One question or concern; the code is what the caller hears and may enter from another phone."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_status_created_at", "status", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    caller_id: Mapped[int | None] = mapped_column(ForeignKey("callers.id", ondelete="SET NULL"), index=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(8))
    language: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.NEW)
    reply_by: Mapped[str] = mapped_column(String(8), default=ReplyBy.CALL)
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    gender: Mapped[str | None] = mapped_column(String(32))
    age_band: Mapped[str | None] = mapped_column(String(32))
    community: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped on every change, so a second manager answering at once is told the case changed."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    first_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declared mapping


class CaseMessage(Base):
    """What the caller said or wrote: the first question, then any follow-ups."""

    __tablename__ = "case_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    text: Mapped[str | None] = mapped_column(Text)
    """An SMS question, with number-shaped digit runs masked before it is stored."""
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CaseAnswer(Base):
    """An answer by text or voice; the caller hears it on her next call, or gets the text by SMS."""

    __tablename__ = "case_answers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(8))
    text: Mapped[str | None] = mapped_column(Text)
    audio_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    """The voice answer's file name under the data dir; random, never derived from the case."""
    media_type: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heard_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the caller listened to (or was sent) it; unheard answers are announced at the next call."""
    feedback: Mapped[str | None] = mapped_column(String(16))
    """After hearing it: "answered" (1) or "follow_up" (2)."""


class CaseNote(Base):
    """An internal note between staff; never shown or sent to the caller."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
