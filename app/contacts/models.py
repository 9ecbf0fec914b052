"""A caller's reply contact: their number encrypted under the contact key, with consent per purpose."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class ContactPurpose(StrEnum):
    """What a caller agreed their number may be used for."""

    SMS_REPLIES = "sms_replies"
    NEWS = "news"
    CALLBACK = "callback"


class Contact(Base):
    """How to reach one caller; the number exists only as AES-GCM ciphertext bound to the caller id."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller_id: Mapped[int] = mapped_column(ForeignKey("callers.id", ondelete="CASCADE"), unique=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    """A 96-bit nonce followed by the AES-256-GCM ciphertext and tag."""
    consent_sms_replies: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    consent_news: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    consent_callback: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    """When the contact must be deleted; None keeps it until consent is withdrawn."""

    def consents(self, purpose: ContactPurpose) -> bool:
        """True when the caller agreed to this purpose."""
        return bool(getattr(self, _column(purpose)))

    def set_consent(self, purpose: ContactPurpose, given: bool) -> None:
        """Give or withdraw consent for one purpose."""
        setattr(self, _column(purpose), given)

    @property
    def purposes(self) -> frozenset[ContactPurpose]:
        """Every purpose consented to."""
        return frozenset(purpose for purpose in ContactPurpose if self.consents(purpose))

    def usable(self, purpose: ContactPurpose, now: datetime) -> bool:
        """Consented to this purpose and not past its deletion time."""
        return self.consents(purpose) and (self.expires_at is None or self.expires_at > now)


def _column(purpose: ContactPurpose) -> str:
    return f"consent_{ContactPurpose(purpose).value}"
