"""Nothing outbound is lost or doubled when Twilio's answer is lost: lookups before resends, early reports."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest
from sqlalchemy import select

from app.contacts.models import Contact
from app.outbox.service import Outbox
from app.outbox.worker import AMBIGUOUS_SETTLE
from app.simulator import TwilioSigner
from tests.outbound import CALLS_URL, HOTLINE, MESSAGES_URL, NUMBER
from tests.outbox_support import Outboxes, box, form, in_turn, listing, outbound, report_to_row
from tests.pg import PostgresServer
from tests.test_outbox_service import hits, stored_bytes

E164 = re.compile(r"\+?\d{8,}")
__all__ = ["box", "outbound"]  # fixtures shared from outbox_support


async def test_timeout_after_twilio_accepted_is_reconciled_not_resent(box: Outboxes) -> None:
    """One POST over the whole run; the retry finds the message at Twilio and records its sid."""
    clock, fake, worker = box.clock, box.fake, box.worker
    posts = box.twilio.post(MESSAGES_URL).mock(side_effect=in_turn(fake.accepted_then_timed_out, fake.create))
    lookups = box.twilio.get(MESSAGES_URL).mock(side_effect=fake.listed)
    await box.queue_sms("Su pregunta fue respondida.")
    started = clock.now
    assert await worker.run_once() == 1
    row = await box.one_row()
    assert (row.status, row.ambiguous_since, row.provider_sid) == ("pending", started, None)
    assert row.last_error == "ReadTimeout calling Twilio"
    clock.advance(seconds=AMBIGUOUS_SETTLE.total_seconds() - 1)
    assert await worker.run_once() == 0, "Twilio may still be working on it: not asked yet"
    clock.advance(seconds=1)
    assert await worker.run_once() == 1
    clock.advance(hours=2)
    assert await worker.run_once() == 0
    row = await box.one_row()
    assert (row.status, row.attempts, row.provider_sid) == ("sent", 2, fake.sids()[0])
    assert (posts.call_count, lookups.call_count, len(fake.sids())) == (1, 1, 1)
    asked = lookups.calls.last.request.url.params
    assert (asked["To"], asked["From"], asked["PageSize"]) == (NUMBER, HOTLINE, "20")


async def test_timeout_with_nothing_at_twilio_is_sent_again_exactly_once(box: Outboxes) -> None:
    """Twilio holds only other messages (other text, inbound, before the attempt): one more POST."""
    clock, fake, worker = box.clock, box.fake, box.worker
    await box.queue_sms("Hola")
    decoys = [("Chau", "outbound-api", 0), ("Hola", "inbound", 0), ("Hola", "outbound-api", -3600)]
    for body, direction, offset in decoys:
        when = format_datetime(clock.now + timedelta(seconds=offset), usegmt=True)
        record = {"sid": "SM" + uuid.uuid4().hex, "to": NUMBER, "from": HOTLINE, "body": body}
        fake.records["messages"].insert(0, record | {"direction": direction, "date_created": when})
    posts = box.twilio.post(MESSAGES_URL).mock(
        side_effect=in_turn(httpx.ReadTimeout("timed out"), fake.create)
    )
    lookups = box.twilio.get(MESSAGES_URL).mock(side_effect=fake.listed)
    assert await worker.run_once() == 1
    clock.advance(hours=1)
    assert await worker.run_once() == 1
    clock.advance(hours=2)
    assert await worker.run_once() == 0
    row = await box.one_row()
    assert (row.status, row.attempts, row.provider_sid) == ("sent", 2, fake.sids()[-1])
    assert (posts.call_count, lookups.call_count) == (2, 1)


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("busy")]
)
async def test_nothing_sent_is_retried_without_a_lookup(box: Outboxes, error: Exception) -> None:
    """No connection means no request reached Twilio: the retry just sends."""
    posts = box.twilio.post(MESSAGES_URL).mock(side_effect=in_turn(error, box.fake.create))
    lookups = box.twilio.get(MESSAGES_URL).mock(side_effect=box.fake.listed)
    await box.queue_sms()
    assert await box.worker.run_once() == 1
    assert (await box.one_row()).ambiguous_since is None
    box.clock.advance(hours=1)
    assert await box.worker.run_once() == 1
    row = await box.one_row()
    assert (row.status, posts.call_count, lookups.call_count) == ("sent", 2, 0)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(429, json={"code": 20429, "message": "Too Many Requests", "status": 429}),
        httpx.Response(503, text="down"),
        httpx.ReadTimeout("timed out"),
    ],
    ids=["429", "503", "timeout"],
)
async def test_failed_lookup_keeps_the_row_waiting_and_never_sends(
    box: Outboxes, failure: httpx.Response | Exception, caplog: pytest.LogCaptureFixture
) -> None:
    """Each failed lookup is an attempt with backoff; out of attempts, the row is failed for an operator."""
    clock, worker = box.clock, box.worker
    posts = box.twilio.post(MESSAGES_URL).mock(side_effect=box.fake.accepted_then_timed_out)
    lookups = box.twilio.get(MESSAGES_URL).mock(side_effect=[failure] * 3)
    await box.queue_sms()
    started = clock.now
    assert await worker.run_once() == 1
    clock.advance(hours=1)
    assert await worker.run_once() == 1
    row = await box.one_row()
    assert (row.status, row.attempts, row.ambiguous_since) == ("pending", 2, started)
    assert row.next_attempt_at is not None
    assert row.next_attempt_at > clock.now
    assert row.last_error is not None
    assert row.last_error.startswith("checking Twilio: ")
    clock.advance(hours=2)
    assert await worker.run_once() == 1
    clock.advance(hours=4)
    assert await worker.run_once() == 0
    row = await box.one_row()
    assert (row.status, row.attempts, row.provider_sid) == ("failed", 3, None)
    assert (posts.call_count, lookups.call_count) == (1, 2)
    assert f"outbox {row.id}: failed after 3 attempt(s): checking Twilio" in caplog.text
    assert hits(caplog.text.encode()) == []


async def test_refused_lookup_fails_the_row_at_once(box: Outboxes) -> None:
    """A lookup Twilio refuses (401: bad credentials) will not get better by waiting: failed, not sent."""
    posts = box.twilio.post(MESSAGES_URL).mock(side_effect=box.fake.accepted_then_timed_out)
    refusal = {"code": 20003, "message": "Authenticate", "status": 401}
    box.twilio.get(MESSAGES_URL).mock(return_value=httpx.Response(401, json=refusal))
    await box.queue_sms()
    assert await box.worker.run_once() == 1
    box.clock.advance(hours=1)
    assert await box.worker.run_once() == 1
    row = await box.one_row()
    assert (row.status, row.last_error, posts.call_count) == (
        "failed",
        "checking Twilio: HTTP 401: Unable to fetch page",
        1,
    )


async def test_call_back_timed_out_after_twilio_placed_it_is_not_placed_twice(box: Outboxes) -> None:
    """The lookup finds the call from the hotline to the caller; its sid is recorded, the number deleted."""
    posts = box.twilio.post(CALLS_URL).mock(side_effect=box.fake.accepted_then_timed_out)
    lookups = box.twilio.get(CALLS_URL).mock(side_effect=box.fake.listed)
    await box.queue_call_back()
    assert await box.worker.run_once() == 1
    async with box.sessions() as db:
        assert (await db.scalars(select(Contact))).all(), "kept: the call may have to be placed again"
    box.clock.advance(hours=1)
    assert await box.worker.run_once() == 1
    row = await box.one_row()
    assert (row.status, row.provider_sid) == ("sent", box.fake.sids("calls")[0])
    assert (posts.call_count, lookups.call_count) == (1, 1)
    asked = lookups.calls.last.request.url.params
    assert (asked["To"], asked["From"]) == (NUMBER, HOTLINE)
    async with box.sessions() as db:
        assert (await db.scalars(select(Contact))).all() == [], "placed: the call-back number is deleted"


async def test_a_message_another_row_holds_is_not_taken(box: Outboxes) -> None:
    """Two rows with the same text to one caller: the lookup skips the sid the first row recorded."""
    fake = box.fake
    box.twilio.post(MESSAGES_URL).mock(side_effect=in_turn(fake.create, fake.accepted_then_timed_out))
    box.twilio.get(MESSAGES_URL).mock(side_effect=fake.listed)
    caller_id = await box.queue_sms("Hola")
    async with box.sessions() as db, db.begin():
        await Outbox(db, box.outbound, clock=box.clock).enqueue_sms(caller_id, "Hola")
    assert await box.worker.run_once() == 2
    box.clock.advance(hours=1)
    assert await box.worker.run_once() == 1
    first, second = await box.all_rows()
    assert [first.provider_sid, second.provider_sid] == fake.sids()
    assert (first.status, second.status) == ("sent", "sent")


async def test_two_messages_at_twilio_record_the_oldest_and_warn(
    box: Outboxes, caplog: pytest.LogCaptureFixture
) -> None:
    """Two lost answers that both reached Twilio: the doubling already happened; it is said, not hidden."""
    box.twilio.post(MESSAGES_URL).mock(side_effect=box.fake.accepted_then_timed_out)
    box.twilio.get(MESSAGES_URL).mock(side_effect=in_turn(listing(MESSAGES_URL), box.fake.listed))
    await box.queue_sms()
    assert await box.worker.run_once() == 1
    box.clock.advance(hours=1)
    assert await box.worker.run_once() == 1  # the list lagged: nothing found, sent again (timed out again)
    box.clock.advance(hours=1)
    assert await box.worker.run_once() == 1
    row = await box.one_row()
    assert (row.status, row.provider_sid) == ("sent", box.fake.sids()[0])
    assert f"outbox {row.id}: Twilio holds 2 messages for it; the oldest is recorded" in caplog.text


async def test_no_number_in_the_database_logs_or_callback_urls(
    box: Outboxes,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    database_url: str,
    postgres_server: PostgresServer | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Timeouts, lookups (whose URLs carry the number to Twilio) and early reports leave no number behind."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # it logs each lookup's URL, ?To= included: masked
    fake = box.fake
    posts = box.twilio.post(MESSAGES_URL).mock(side_effect=in_turn(fake.accepted_then_timed_out, fake.create))
    box.twilio.get(MESSAGES_URL).mock(side_effect=in_turn(httpx.Response(503, text="down"), fake.listed))
    await box.queue_sms("uno")
    await box.queue_sms("dos")
    for _ in range(3):
        await box.worker.run_once()
        box.clock.advance(hours=2)
    rows = await box.all_rows()
    assert [row.status for row in rows] == ["sent", "sent"]
    await report_to_row(client, signer, str(rows[1].provider_sid), "delivered", rows[1].id)
    callbacks = [form(call.request)["StatusCallback"] for call in posts.calls]
    assert [E164.search(url) for url in callbacks] == [None, None]
    assert hits(stored_bytes(database_url, postgres_server)) == []
    assert hits("\n".join(r.getMessage() for r in caplog.records).encode()) == []
