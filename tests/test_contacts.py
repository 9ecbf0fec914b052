"""Reply contacts: AES-GCM bound to the caller, consent per purpose, and nothing readable at rest."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.callers.models import Caller
from app.contacts.crypto import ContactCipher, ContactUnreadable, derive_contact_key
from app.contacts.models import Contact, ContactPurpose
from app.contacts.service import ContactService
from app.db.base import utcnow
from app.outbox.models import MessageStatus
from app.outbox.service import Outbox
from app.settings import Settings
from app.simulator import TextPhone, TwilioSigner
from tests.outbound import NUMBER, Sessions, outbound_settings
from tests.pg import PostgresServer
from tests.test_outbox_service import add_caller, all_rows, hits, stored_bytes

SECRET = b"test-contact-key-" + b"y" * 32


@pytest.fixture
def outbound(settings: Settings) -> Settings:
    """Settings that can send."""
    return outbound_settings(settings)


@pytest.fixture
def cipher(outbound: Settings) -> ContactCipher:
    """The cipher the app uses."""
    return ContactCipher.from_secret(outbound.contact_secret)


def test_round_trip_and_fresh_nonce_per_encryption() -> None:
    """The number comes back; two encryptions of it differ (random 96-bit nonce each time)."""
    cipher = ContactCipher.from_secret(SECRET)
    first, second = cipher.encrypt(7, NUMBER), cipher.encrypt(7, NUMBER)
    assert first != second
    assert first[:12] != second[:12]
    assert len(first) == 12 + len(NUMBER) + 16
    assert cipher.decrypt(7, first) == cipher.decrypt(7, second) == NUMBER
    assert NUMBER.encode() not in first
    assert ContactCipher(derive_contact_key(SECRET)).decrypt(7, first) == NUMBER
    assert "key" in repr(cipher)
    assert derive_contact_key(SECRET) not in repr(cipher).encode()


def test_wrong_key_other_caller_or_tampering_fail_typed() -> None:
    """A ciphertext cannot be read with another key, moved to another caller, or altered."""
    cipher = ContactCipher.from_secret(SECRET)
    blob = cipher.encrypt(7, NUMBER)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    attempts = [
        (ContactCipher.from_secret(b"another-secret-" + b"z" * 32), 7, blob),
        (cipher, 8, blob),
        (cipher, 7, tampered),
        (cipher, 7, blob[:5]),
    ]
    for reader, caller_id, data in attempts:
        with pytest.raises(ContactUnreadable) as raised:
            reader.decrypt(caller_id, data)
        assert hits(str(raised.value).encode()) == []
    with pytest.raises(ValueError, match="32 bytes"):
        ContactCipher(b"short")


async def test_remember_upserts_purposes_and_reads_back(
    sessions: Sessions, outbound: Settings, cipher: ContactCipher
) -> None:
    """One row per caller; each purpose is added; the deletion time is the latest one needed."""
    caller_id = await add_caller(sessions, outbound, [])
    soon, later = utcnow() + timedelta(hours=1), utcnow() + timedelta(days=3)
    async with sessions() as db, db.begin():
        contacts = ContactService(db, cipher)
        await contacts.remember(caller_id, NUMBER, ContactPurpose.CALLBACK, soon)
        await contacts.remember(caller_id, "+51 964-555-123", ContactPurpose.SMS_REPLIES, later)
        assert await contacts.number_for(caller_id) == NUMBER
        assert await contacts.number_for(caller_id, ContactPurpose.CALLBACK) == NUMBER
        assert await contacts.number_for(caller_id, ContactPurpose.NEWS) is None
        assert await contacts.number_for(caller_id + 1) is None
    async with sessions() as db:
        [contact] = (await db.scalars(select(Contact))).all()
        assert contact.purposes == {ContactPurpose.CALLBACK, ContactPurpose.SMS_REPLIES}
        assert contact.expires_at == later
    async with sessions() as db, db.begin():
        contact = await ContactService(db, cipher).remember(caller_id, NUMBER, ContactPurpose.NEWS)
        assert contact.expires_at is None  # news has no end date: kept until withdrawn
        assert len(contact.purposes) == 3
    with pytest.raises(ValueError, match=r"E\.164"):
        async with sessions() as db:
            await ContactService(db, cipher).remember(caller_id, "12", ContactPurpose.NEWS)


async def test_forget_deletes_the_contact_and_cancels_queued_messages(
    sessions: Sessions, outbound: Settings, cipher: ContactCipher
) -> None:
    """STOP: the number is gone, pending and scheduled rows are cancelled, sent ones stay as they were."""
    purposes = [ContactPurpose.SMS_REPLIES, ContactPurpose.CALLBACK]
    caller_id = await add_caller(sessions, outbound, purposes)
    other = await add_caller(sessions, outbound)
    async with sessions() as db, db.begin():
        outbox = Outbox(db, outbound)
        sent = await outbox.enqueue_sms(caller_id, "ya enviado")
        assert sent is not None
        sent.status = MessageStatus.SENT
        await outbox.enqueue_sms(caller_id, "pendiente")
        await outbox.enqueue_call(caller_id, "hotline", not_before=utcnow() + timedelta(minutes=5))
        await outbox.enqueue_sms(other, "para otra persona")
    async with sessions() as db, db.begin():
        await ContactService(db, cipher).forget(caller_id)
        assert await ContactService(db, cipher).number_for(caller_id) is None
    statuses = [(row.caller_id, row.body, row.status) for row in await all_rows(sessions)]
    assert statuses == [
        (caller_id, "ya enviado", "sent"),
        (caller_id, "pendiente", "cancelled"),
        (caller_id, None, "cancelled"),
        (other, "para otra persona", "pending"),
    ]


async def test_drop_purpose_deletes_the_row_when_no_purpose_is_left(
    sessions: Sessions, outbound: Settings, cipher: ContactCipher
) -> None:
    """Withdrawing news keeps the number for replies; withdrawing that too deletes it."""
    caller_id = await add_caller(sessions, outbound, [ContactPurpose.SMS_REPLIES, ContactPurpose.NEWS])
    async with sessions() as db, db.begin():
        await Outbox(db, outbound).enqueue_sms(caller_id, "noticias", purpose=ContactPurpose.NEWS)
        await Outbox(db, outbound).enqueue_sms(caller_id, "respuesta")
        contacts = ContactService(db, cipher)
        await contacts.drop_purpose(caller_id, ContactPurpose.NEWS)
        assert await contacts.number_for(caller_id, ContactPurpose.SMS_REPLIES) == NUMBER
        await contacts.drop_purpose(caller_id, ContactPurpose.SMS_REPLIES)
        await contacts.drop_purpose(caller_id, ContactPurpose.SMS_REPLIES)  # nothing left: no error
    async with sessions() as db:
        assert (await db.scalars(select(Contact))).all() == []
    assert [row.status for row in await all_rows(sessions)] == ["cancelled", "cancelled"]


async def test_purge_expired(sessions: Sessions, outbound: Settings, cipher: ContactCipher) -> None:
    """Contacts past their deletion time go (with what was queued for them); the others stay."""
    now = utcnow()
    expired = await add_caller(sessions, outbound, expires_at=now - timedelta(seconds=1))
    current = await add_caller(sessions, outbound, expires_at=now + timedelta(hours=1))
    forever = await add_caller(sessions, outbound)
    async with sessions() as db, db.begin():
        contacts = ContactService(db, cipher)
        assert await contacts.purge_expired(now) == 1
        assert await contacts.purge_expired(now) == 0
        assert await contacts.number_for(expired) is None
        assert await contacts.number_for(current) == await contacts.number_for(forever) == NUMBER
        assert await contacts.purge_expired(now + timedelta(hours=2)) == 1


async def test_the_number_is_never_stored_readably(
    sessions: Sessions,
    outbound: Settings,
    cipher: ContactCipher,
    database_url: str,
    postgres_server: PostgresServer | None,
) -> None:
    """The SQLite files and a pg_dump hold ciphertext only, in no spelling of the number."""
    caller_id = await add_caller(sessions, outbound, list(ContactPurpose))
    async with sessions() as db:
        assert await ContactService(db, cipher).number_for(caller_id) == NUMBER
    blob = stored_bytes(database_url, postgres_server)
    assert len(blob) > 0
    assert hits(blob) == []


async def test_stop_by_sms_forgets_the_contact_and_cancels_the_queue(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    app: FastAPI,
    sessions: Sessions,
    outbound: Settings,
    cipher: ContactCipher,
) -> None:
    """The app's `forget_contact` hook is the real one: STOP deletes the number, cancels the queue."""
    phone = TextPhone(client=client, signer=signer, sender=NUMBER)
    await phone.text("hola")
    async with sessions() as db, db.begin():
        [caller_id] = (await db.scalars(select(Caller.id))).all()
        await ContactService(db, cipher).remember(caller_id, NUMBER, ContactPurpose.SMS_REPLIES)
        assert await Outbox(db, outbound).enqueue_sms(caller_id, "respuesta") is not None
    await phone.text("STOP")
    async with sessions() as db:
        assert (await db.scalars(select(Contact))).all() == []
    assert [(row.status, row.last_error) for row in await all_rows(sessions)] == [
        ("cancelled", "contact forgotten")
    ]
    assert app.state.contact_cipher is not None
