"""Remember, read and forget reply contacts; services only flush, the caller's transaction commits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.contacts.crypto import ContactCipher
from app.contacts.models import Contact, ContactPurpose
from app.contacts.repository import ContactRepository
from app.db.base import utcnow
from app.outbox.repository import OutboxRepository
from app.privacy.pseudonym import normalize_e164

log = logging.getLogger(__name__)


class ContactService:
    """A caller's encrypted number and consent; forgetting also cancels what was queued for them."""

    def __init__(
        self, db: AsyncSession, cipher: ContactCipher, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.clock = clock
        self.contacts = ContactRepository(db)
        self.outbox = OutboxRepository(db)

    async def remember(
        self, caller_id: int, e164: str, purpose: ContactPurpose, expires_at: datetime | None = None
    ) -> Contact:
        """Store (or refresh) the caller's number and add a consented purpose."""
        number = normalize_e164(e164)
        if number is None:
            raise ValueError("a reply contact needs an E.164 phone number")
        now = self.clock()
        purpose = ContactPurpose(purpose)
        ciphertext = self.cipher.encrypt(caller_id, number)
        values = {
            "caller_id": caller_id,
            "ciphertext": ciphertext,
            f"consent_{purpose.value}": True,
            "created_at": now,
            "updated_at": now,
            "expires_at": expires_at,
        }
        inserted = await self.contacts.insert_if_absent(values)
        contact = await self.contacts.get(caller_id, lock=True)
        if contact is None:  # pragma: no cover - inserted or present a moment ago, in this transaction
            raise LookupError("contact vanished during insert")
        if inserted:
            return contact
        contact.ciphertext = ciphertext
        contact.set_consent(purpose, True)
        # Keep the number as long as its longest-lived purpose needs it (None: until withdrawn).
        contact.expires_at = _later(contact.expires_at, expires_at)
        contact.updated_at = now
        await self.db.flush()
        return contact

    async def consents(self, caller_id: int, purpose: ContactPurpose) -> bool:
        """True when the caller has a live contact consented to this purpose."""
        contact = await self.contacts.get(caller_id)
        return contact is not None and contact.usable(purpose, self.clock())

    async def number_for(self, caller_id: int, purpose: ContactPurpose | None = None) -> str | None:
        """The decrypted number (in memory only; for the outbox worker), if consented and not expired."""
        contact = await self.contacts.get(caller_id)
        if contact is None:
            return None
        now = self.clock()
        if contact.expires_at is not None and contact.expires_at <= now:
            return None
        if purpose is not None and not contact.consents(purpose):
            return None
        return self.cipher.decrypt(caller_id, contact.ciphertext)

    async def forget(self, caller_id: int) -> None:
        """Delete the caller's number and cancel everything still queued for them (STOP, erasure)."""
        await self.contacts.delete(caller_id)
        cancelled = await self.outbox.cancel_pending(caller_id, "contact forgotten")
        await self.db.flush()
        log.info("forgot the contact of caller %s; cancelled %s queued message(s)", caller_id, cancelled)

    async def drop_purpose(self, caller_id: int, purpose: ContactPurpose) -> None:
        """Withdraw one purpose (and its queued messages); the number goes when no purpose is left."""
        purpose = ContactPurpose(purpose)
        contact = await self.contacts.get(caller_id, lock=True)
        await self.outbox.cancel_pending(caller_id, f"consent withdrawn: {purpose.value}", purpose=purpose)
        if contact is None:
            return
        contact.set_consent(purpose, False)
        contact.updated_at = self.clock()
        if not contact.purposes:
            await self.db.delete(contact)
        await self.db.flush()

    async def purge_expired(self, now: datetime) -> int:
        """Delete contacts past their deletion time and cancel what was queued for them."""
        callers = await self.contacts.delete_expired(now)
        for caller_id in callers:
            await self.outbox.cancel_pending(caller_id, "contact expired")
        if callers:
            log.info("deleted %s expired contact(s)", len(callers))
        return len(callers)


def _later(current: datetime | None, given: datetime | None) -> datetime | None:
    """The later of two deletion times, where None means "no deletion time" and wins."""
    if current is None or given is None:
        return None
    return max(current, given)
