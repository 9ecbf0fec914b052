"""Rollups: counters per period and dimensions, and who was already counted as a participant."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Boolean, Date, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

BigCount = BigInteger().with_variant(Integer(), "sqlite")


class StatsCount(Base):
    """One counter: a metric (about a subject, e.g. a message) in one period and one group of people.

    Every figure a partner sees is a sum of these rows; none is ever computed from raw interactions.
    """

    __tablename__ = "stats_counts"

    metric: Mapped[str] = mapped_column(String(24), primary_key=True)
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    """A message, a survey question or a case topic; empty for figures about the whole hotline."""
    detail: Mapped[str] = mapped_column(String(64), primary_key=True)
    """An answer's value, or a response-time bucket; empty when the metric has none."""
    service: Mapped[str] = mapped_column(String(16), primary_key=True)
    gender: Mapped[str] = mapped_column(String(32), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(32), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    community: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigCount, default=0)


class StatsMember(Base):
    """A caller already counted as a participant in a period (and service): counted once, in one group.

    The group is that of the caller's first session in the period (its ``owner``); when that session's
    demographics change, the participant moves with it. ``caller_id`` is the pseudonymous caller's row
    number; it never leaves the service.
    """

    __tablename__ = "stats_members"

    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    caller_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32), index=True)
    is_new: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The caller's first contact ever falls in this period."""
    came_back: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The caller took part on two or more different days, up to this period's end."""
    gender: Mapped[str] = mapped_column(String(32))
    age_band: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    community: Mapped[str] = mapped_column(String(64))
