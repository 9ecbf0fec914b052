"""Queueing through the outbox: consent, opt-out and the daily cap decide; nothing is committed by it."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.callers.models import Caller
from app.contacts.crypto import ContactCipher
from app.contacts.models import ContactPurpose
from app.contacts.service import ContactService
from app.db.base import utcnow
from app.db.engine import is_sqlite
from app.outbox.models import MessageKind, MessageStatus, OutboxMessage
from app.outbox.service import Outbox
from app.settings import Settings
from tests.outbound import NEEDLES, NUMBER, Clock, Sessions, outbound_settings
from tests.pg import PostgresServer


async def add_caller(
    sessions: Sessions,
    settings: Settings,
    purposes: Iterable[ContactPurpose] = (ContactPurpose.SMS_REPLIES,),
    *,
    number: str = NUMBER,
    expires_at: datetime | None = None,
) -> int:
    """A caller (by a random pseudonym) with a contact consented to the given purposes."""
    cipher = ContactCipher.from_secret(settings.contact_secret)
    async with sessions() as db, db.begin():
        caller = Caller(pseudonym=secrets.token_hex(32))
        db.add(caller)
        await db.flush()
        for purpose in purposes:
            await ContactService(db, cipher).remember(caller.id, number, purpose, expires_at)
        return caller.id


async def set_opted_out(sessions: Sessions, caller_id: int) -> None:
    """Mark a caller as having said STOP."""
    async with sessions() as db, db.begin():
        await db.execute(update(Caller).where(Caller.id == caller_id).values(opted_out=True))


async def all_rows(sessions: Sessions) -> list[OutboxMessage]:
    """Every outbox row, oldest first."""
    async with sessions() as db:
        return list((await db.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


def stored_bytes(database_url: str, postgres_server: PostgresServer | None) -> bytes:
    """Everything the database holds at rest: the SQLite files (WAL included) or a pg_dump."""
    if is_sqlite(database_url):
        path = Path(database_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())
    assert postgres_server is not None
    return postgres_server.dump(database_url.rsplit("/", 1)[1]).encode()


def hits(blob: bytes) -> list[str]:
    """Which spellings of the test number occur in some bytes."""
    return [needle for needle in NEEDLES if needle.encode() in blob]


@pytest.fixture
def outbound(settings: Settings) -> Settings:
    """Settings that can send."""
    return outbound_settings(settings, outbound_daily_cap=3)


async def test_enqueue_sms_adds_a_pending_row_without_committing(
    sessions: Sessions, outbound: Settings
) -> None:
    """The row is part of the caller's transaction: rolled back with it, committed with it."""
    caller_id = await add_caller(sessions, outbound)
    async with sessions() as db:
        message = await Outbox(db, outbound).enqueue_sms(caller_id, "Su caso fue respondido.", broadcast_id=7)
        assert message is not None
        assert message.id is not None
        await db.rollback()
    assert await all_rows(sessions) == []
    later = utcnow() + timedelta(hours=1)
    async with sessions() as db:
        await Outbox(db, outbound).enqueue_sms(caller_id, "Hola", not_before=later)
        await db.commit()
    [row] = await all_rows(sessions)
    assert (row.kind, row.status, row.attempts, row.body) == (
        MessageKind.SMS,
        MessageStatus.PENDING,
        0,
        "Hola",
    )
    assert (row.purpose, row.caller_id, row.not_before) == (ContactPurpose.SMS_REPLIES, caller_id, later)


async def test_enqueue_call_needs_callback_consent(sessions: Sessions, outbound: Settings) -> None:
    """A call-back goes only to a caller who asked for one."""
    sms_only = await add_caller(sessions, outbound)
    callback = await add_caller(sessions, outbound, [ContactPurpose.CALLBACK])
    async with sessions() as db, db.begin():
        outbox = Outbox(db, outbound)
        assert await outbox.enqueue_call(sms_only, "hotline", not_before=None) is None
        call = await outbox.enqueue_call(callback, "hotline", not_before=utcnow())
        assert call is not None
        assert (call.kind, call.call_flow, call.body, call.purpose) == ("call", "hotline", None, "callback")
        assert await outbox.enqueue_sms(callback, "hola") is None  # callback consent is not SMS consent


@pytest.mark.parametrize("case", ["no-contact", "other-purpose", "opted-out", "expired", "unknown-caller"])
async def test_nothing_is_queued_without_consent_or_after_opt_out(
    sessions: Sessions, outbound: Settings, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No contact, a contact for news only, STOP, an expired contact, or no such caller: None."""
    caplog.set_level(logging.INFO, logger="app.outbox")
    purposes = {"no-contact": [], "other-purpose": [ContactPurpose.NEWS]}.get(
        case, [ContactPurpose.SMS_REPLIES]
    )
    expires = utcnow() - timedelta(seconds=1) if case == "expired" else None
    caller_id = await add_caller(sessions, outbound, purposes, expires_at=expires)
    if case == "opted-out":
        await set_opted_out(sessions, caller_id)
    target = caller_id + 1000 if case == "unknown-caller" else caller_id
    async with sessions() as db, db.begin():
        assert await Outbox(db, outbound).enqueue_sms(target, "hola") is None
    assert await all_rows(sessions) == []
    assert "not queued" in caplog.text
    assert hits(caplog.text.encode()) == []


async def test_daily_cap_counts_the_last_24_hours_except_cancelled(
    sessions: Sessions, outbound: Settings
) -> None:
    """Three a day (in these settings): older rows and cancelled ones do not count."""
    clock = Clock()
    caller_id = await add_caller(sessions, outbound, [ContactPurpose.SMS_REPLIES, ContactPurpose.NEWS])
    async with sessions() as db, db.begin():
        outbox = Outbox(db, outbound, clock=clock)
        assert await outbox.enqueue_sms(caller_id, "old") is not None
        clock.advance(hours=23)
        for text in ("one", "two"):
            assert await outbox.enqueue_sms(caller_id, text, purpose=ContactPurpose.NEWS) is not None
        assert await outbox.enqueue_sms(caller_id, "three") is None
        clock.advance(hours=1, seconds=1)  # "old" is now more than 24 hours old
        assert await outbox.enqueue_sms(caller_id, "three") is not None
        assert await outbox.enqueue_sms(caller_id, "four") is None
        await ContactService(db, ContactCipher.from_secret(outbound.contact_secret)).drop_purpose(
            caller_id, ContactPurpose.NEWS
        )
        assert await outbox.enqueue_sms(caller_id, "four") is not None  # the two news rows were cancelled


@pytest.mark.parametrize("body", ["", "   ", "x" * 1601])
async def test_bad_bodies_are_programming_errors(sessions: Sessions, outbound: Settings, body: str) -> None:
    """An empty or over-long SMS is refused loudly, not silently dropped."""
    caller_id = await add_caller(sessions, outbound)
    async with sessions() as db:
        with pytest.raises(ValueError, match="SMS body"):
            await Outbox(db, outbound).enqueue_sms(caller_id, body)
        with pytest.raises(ValueError, match="sms_replies or news"):
            await Outbox(db, outbound).enqueue_sms(caller_id, "hola", purpose=ContactPurpose.CALLBACK)
