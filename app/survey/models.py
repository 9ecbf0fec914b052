"""Survey runs, their answers, and consent counted without any link to a person."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow
from app.sessions.models import BigId


class SurveyRun(Base):
    """One pass of one caller through a survey; a caller who hangs up continues the same run later."""

    __tablename__ = "survey_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    """A random id, the FLOIP session_id; the internal id never leaves the service."""
    caller_id: Mapped[int | None] = mapped_column(ForeignKey("callers.id", ondelete="SET NULL"), index=True)
    flow_id: Mapped[str] = mapped_column(String(64))
    survey: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")
    """open, completed, restarted (the caller chose to start again) or ineligible (under 18)."""
    language: Mapped[str | None] = mapped_column(String(16))
    gender: Mapped[str | None] = mapped_column(String(32))
    age_band: Mapped[str | None] = mapped_column(String(32))
    community: Mapped[str | None] = mapped_column(String(64))
    last_session_id: Mapped[str | None] = mapped_column(String(32))
    """The session that last answered; finds the run of a caller whose number is withheld."""
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Answer(Base):
    """One answer (or skip) to one question of a run, stored by its name; at most one per question."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("run_id", "question_id", name="uq_answers_run_id_question_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("survey_runs.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"))
    flow_id: Mapped[str] = mapped_column(String(64))
    question_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    """select_one, numeric or open."""
    text: Mapped[str | None] = mapped_column(Text)
    """An open answer written by SMS, with anything shaped like a phone number masked."""
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id", ondelete="SET NULL"))
    """An open answer spoken by voice: the recording, fetched from Twilio and deleted there."""
    channel: Mapped[str] = mapped_column(String(8))
    language: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class ConsentCount(Base):
    """How many accepted or declined a survey, per day, channel and language: counts, never people."""

    __tablename__ = "survey_consent_counts"

    flow_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    survey: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    declined: Mapped[int] = mapped_column(Integer, default=0)
