"""What a Flow Results package has published: kept so a question removed from a flow stays described."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKeyConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime


class PublishedPackage(Base):
    """A survey's package, from the moment it was first known (its first answer or first read)."""

    __tablename__ = "floip_packages"

    flow_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    survey: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PublishedQuestion(Base):
    """A question's schema as first published; the spec lets a package add questions, never change them."""

    __tablename__ = "floip_questions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["flow_id", "survey"],
            ["floip_packages.flow_id", "floip_packages.survey"],
            name="fk_floip_questions_flow_id_floip_packages",
            ondelete="CASCADE",
        ),
    )

    flow_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    survey: Mapped[str] = mapped_column(String(64), primary_key=True)
    question_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    """Order in the schema: the flow's order at first publication, later questions after."""
    schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The question's ``type``, ``label`` and ``type_options``, exactly as served."""
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """When the question joined the package: the package's ``modified`` is the latest of these."""
