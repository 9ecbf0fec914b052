"""The audit log: rows are only ever inserted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow
from app.sessions.models import BigId


class AuditEntry(Base):
    """Who did what to which case, and when; outlives the cases and users it names."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_case_id_at", "case_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(254))
    """The staff e-mail at the time, or "caller" / "system"; kept when the user is removed."""
    action: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int | None] = mapped_column(BigInteger)
    """No foreign key: purging a case must not rewrite its history."""
    detail: Mapped[str | None] = mapped_column(String(255))
