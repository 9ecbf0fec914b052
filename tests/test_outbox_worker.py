"""The outbox worker against a mocked Twilio REST API: sends once, retries, gives up, never duplicates."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import httpx
import pytest
import respx
from sqlalchemy import select, update

from app.callers.models import Caller
from app.contacts.models import Contact, ContactPurpose
from app.db.base import utcnow
from app.outbox.admin import Retry, retry_row
from app.outbox.models import MessageStatus, OutboxMessage
from app.outbox.repository import OutboxRepository
from app.outbox.service import Outbox
from app.outbox.worker import AMBIGUOUS_SETTLE, STALE_REASON
from tests.outbound import CALLS_URL, HOTLINE, MESSAGES_URL, NUMBER
from tests.outbox_support import (
    Outboxes,
    box,
    created,
    created_sms,
    form,
    listing,
    outbound,
    refused,
)
from tests.pg import PostgresServer
from tests.test_outbox_service import add_caller, hits, stored_bytes

PUBLIC = "https://hotline.example.org"
__all__ = ["box", "outbound"]  # fixtures, used by name


async def test_sms_is_sent_once_with_the_decrypted_number(box: Outboxes) -> None:
    """To is the caller's number (from the encrypted contact), From the hotline, with a status callback."""
    route = box.twilio.post(MESSAGES_URL).mock(side_effect=created)
    await box.queue_sms("Su pregunta fue respondida.")
    assert await box.worker.run_once() == 1
    assert await box.worker.run_once() == 0
    assert route.call_count == 1
    row = await box.one_row()
    assert form(route.calls.last.request) == {
        "To": NUMBER,
        "From": HOTLINE,
        "Body": "Su pregunta fue respondida.",
        "StatusCallback": f"{PUBLIC}/twilio/sms/status?outbox={row.id}",
    }
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.provider_sid is not None
    assert row.provider_sid.startswith("SM")
    assert row.sent_at == box.clock.now


@pytest.mark.parametrize(
    ("first", "ambiguous"),
    [
        (httpx.Response(429, json={"code": 20429, "message": "Too Many Requests", "status": 429}), False),
        (httpx.ConnectError("connection refused"), False),
        (httpx.ConnectTimeout("no connection"), False),
        (httpx.Response(500, text="oops"), True),
        (httpx.Response(503, json={"code": 20503, "message": "Service Unavailable", "status": 503}), True),
        (httpx.ReadTimeout("timed out"), True),
        (httpx.WriteTimeout("timed out"), True),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
    ],
    ids=["429", "connect-error", "connect-timeout", "500", "503", "read-timeout", "write-timeout", "dropped"],
)
async def test_transient_failures_are_retried_with_backoff(
    box: Outboxes, first: httpx.Response | Exception, ambiguous: bool
) -> None:
    """The row waits, then is sent: attempts == 2. After a failure that may have reached Twilio the wait
    is AMBIGUOUS_SETTLE and Twilio is asked first (nothing found here); a sure one waits <= 30 s, unasked."""
    clock = box.clock
    route = box.twilio.post(MESSAGES_URL).mock(side_effect=[first, created_sms()])
    lookup = box.twilio.get(MESSAGES_URL).mock(return_value=listing(MESSAGES_URL))
    await box.queue_sms()
    assert await box.worker.run_once() == 1
    row = await box.one_row()
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at is not None
    if ambiguous:
        assert row.next_attempt_at == clock.now + AMBIGUOUS_SETTLE
        assert row.ambiguous_since == clock.now
    else:
        assert clock.now <= row.next_attempt_at <= clock.now + timedelta(seconds=30)
        assert row.ambiguous_since is None
    assert row.last_error
    clock.now = row.next_attempt_at - timedelta(microseconds=1)
    assert await box.worker.run_once() == 0  # not due yet
    clock.advance(seconds=1)
    assert await box.worker.run_once() == 1
    row = await box.one_row()
    assert (row.status, row.attempts, route.call_count) == ("sent", 2, 2)
    assert lookup.call_count == (1 if ambiguous else 0)


@pytest.mark.parametrize(("status", "code"), [(400, 21211), (400, 21610), (401, 20003), (404, 20404)])
async def test_client_errors_fail_at_once_with_a_masked_error(
    box: Outboxes, status: int, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    """An invalid or unsubscribed number is not retried; the error kept never quotes the number."""
    route = box.twilio.post(MESSAGES_URL).mock(return_value=refused(status, code))
    await box.queue_sms()
    assert await box.worker.run_once() == 1
    box.clock.advance(hours=2)
    assert await box.worker.run_once() == 0
    row = await box.one_row()
    assert (row.status, row.attempts, route.call_count) == ("failed", 1, 1)
    assert row.last_error is not None
    assert f"HTTP {status} code {code}" in row.last_error
    assert "[phone]" in row.last_error
    assert hits(row.last_error.encode()) == []
    assert hits(caplog.text.encode()) == []
    assert any(r.levelno == logging.ERROR and str(row.id) in r.getMessage() for r in caplog.records)


async def test_gives_up_after_max_attempts_and_logs_an_error(
    box: Outboxes, caplog: pytest.LogCaptureFixture
) -> None:
    """Three 503s (RIMAY_OUTBOX_MAX_ATTEMPTS=3 here): failed, logged at ERROR with the row id.

    A 503 may come after Twilio stored the message, so attempts 2 and 3 ask Twilio first (nothing there).
    """
    route = box.twilio.post(MESSAGES_URL).mock(return_value=httpx.Response(503, text="down"))
    lookup = box.twilio.get(MESSAGES_URL).mock(return_value=listing(MESSAGES_URL))
    await box.queue_sms()
    for _ in range(3):
        assert await box.worker.run_once() == 1
        box.clock.advance(hours=2)
    assert await box.worker.run_once() == 0
    row = await box.one_row()
    assert (row.status, row.attempts, route.call_count, lookup.call_count) == ("failed", 3, 3, 2)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        f"outbox {row.id}: failed after 3 attempt(s): HTTP 503 code 503: Unable to create record"
    ]


async def _queue_call_backs(
    box: Outboxes, *, not_before: datetime | None = None, expires_at: datetime | None = None
) -> tuple[int, int]:
    """Two call-backs: one caller consented to it alone (until expires_at), one also to news; their ids."""
    callers = (
        await add_caller(box.sessions, box.outbound, [ContactPurpose.CALLBACK], expires_at=expires_at),
        await add_caller(box.sessions, box.outbound, [ContactPurpose.CALLBACK, ContactPurpose.NEWS]),
    )
    async with box.sessions() as db, db.begin():
        for caller_id in callers:
            await Outbox(db, box.outbound, clock=box.clock).enqueue_call(
                caller_id, "hotline", not_before=not_before
            )
    return callers


async def test_call_back_runs_the_voice_webhook_and_then_deletes_the_number(box: Outboxes) -> None:
    """calls.create points at /twilio/voice; the call-back contact is deleted once the call is placed."""
    route = box.twilio.post(CALLS_URL).mock(side_effect=created)
    _, also_news = await _queue_call_backs(box, not_before=box.clock.now)
    assert await box.worker.run_once() == 2
    assert route.call_count == 2
    rows = await box.all_rows()
    # Each call's webhooks name its row, so the call can record itself (test_outbox_call_webhooks.py).
    assert [form(call.request) for call in route.calls] == [
        {
            "To": NUMBER,
            "From": HOTLINE,
            "Url": f"{PUBLIC}/twilio/voice?outbox={row.id}",
            "StatusCallback": f"{PUBLIC}/twilio/voice/status?outbox={row.id}",
        }
        for row in rows
    ]
    assert [row.status for row in rows] == ["sent", "sent"]
    async with box.sessions() as db:
        contacts = (await db.scalars(select(Contact))).all()
    assert [(c.caller_id, c.purposes) for c in contacts] == [(also_news, frozenset({ContactPurpose.NEWS}))]


async def test_scheduled_rows_wait_and_opt_out_before_sending_cancels(box: Outboxes) -> None:
    """not_before is honoured; a caller who says STOP after queueing gets nothing."""
    clock = box.clock
    route = box.twilio.post(MESSAGES_URL).mock(side_effect=created)
    later = await add_caller(box.sessions, box.outbound)
    stopped = await box.queue_sms()
    async with box.sessions() as db, db.begin():
        await Outbox(db, box.outbound, clock=clock).enqueue_sms(
            later, "luego", not_before=clock.now + timedelta(hours=1)
        )
        await db.execute(
            update(OutboxMessage).where(OutboxMessage.caller_id == stopped).values(status="pending")
        )
        await db.execute(update(Caller).where(Caller.id == stopped).values(opted_out=True))
    assert await box.worker.run_once() == 1
    assert route.call_count == 0
    clock.advance(hours=1)
    assert await box.worker.run_once() == 1
    rows = {row.caller_id: row for row in await box.all_rows()}
    assert (rows[stopped].status, rows[stopped].last_error) == ("cancelled", "caller opted out")
    assert rows[later].status == "sent"
    assert route.call_count == 1


async def test_stale_sending_row_is_failed_for_review_never_resent(
    box: Outboxes, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker died mid-send: after the lease the row is failed as unknown; a fresh claim is left alone."""
    clock, outbound = box.clock, box.outbound
    route = box.twilio.post(MESSAGES_URL).mock(side_effect=created)
    lookup = box.twilio.get(MESSAGES_URL).mock(return_value=listing(MESSAGES_URL))
    await box.queue_sms("huérfano")
    await box.queue_sms("en curso")
    lease = timedelta(seconds=outbound.outbox_lease_seconds)
    async with box.sessions() as db, db.begin():
        for body, claimed in (
            ("huérfano", clock.now - lease - timedelta(seconds=1)),
            ("en curso", clock.now),
        ):
            await db.execute(
                update(OutboxMessage)
                .where(OutboxMessage.body == body)
                .values(status=MessageStatus.SENDING, claimed_at=claimed, attempts=1)
            )
    assert await box.worker.run_once() == 0
    assert route.call_count == 0
    orphan, running = await box.all_rows()
    assert (orphan.status, orphan.last_error) == ("failed", STALE_REASON)
    assert orphan.ambiguous_since == clock.now - lease - timedelta(seconds=1), (
        "its claim may have reached Twilio"
    )
    assert running.status == "sending"
    assert f"outbox {orphan.id}: {STALE_REASON}" in caplog.text
    # An operator checked Twilio and decides to resend.
    assert await retry_row(outbound, orphan.id) == Retry.QUEUED
    assert await retry_row(outbound, running.id) == Retry.NOT_FAILED
    clock.advance(minutes=1)
    assert await box.worker.run_once() == 1
    assert (route.call_count, lookup.call_count) == (1, 1), "Twilio is asked before the resend"
    orphan, _ = await box.all_rows()
    assert (orphan.status, orphan.attempts) == ("sent", 1)


async def test_no_number_at_rest_or_in_logs_after_a_full_run(
    box: Outboxes,
    database_url: str,
    postgres_server: PostgresServer | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SMS sent, a refusal quoting the number, a call-back: the database and the logs never hold it."""
    caplog.set_level(logging.DEBUG)
    box.twilio.post(MESSAGES_URL).mock(side_effect=[created_sms(), refused(400, 21211)])
    box.twilio.post(CALLS_URL).mock(side_effect=created)
    await box.queue_sms("uno")
    await box.queue_sms("dos")
    await box.queue_call_back()
    assert await box.worker.run_once() == 3
    assert sorted(row.status for row in await box.all_rows()) == ["failed", "sent", "sent"]
    assert hits(stored_bytes(database_url, postgres_server)) == []
    assert hits("\n".join(r.getMessage() for r in caplog.records).encode()) == []
    assert utcnow() >= box.clock.now


async def _end_call_backs_for_good(ending: str, box: Outboxes) -> respx.Route:
    """Make every queued call-back fail for good: refused, out of tries, or lost in a worker crash."""
    twilio, worker, clock = box.twilio, box.worker, box.clock
    if ending == "refused":
        route = twilio.post(CALLS_URL).mock(return_value=refused(400, 21211))
        assert await worker.run_once() == 2
    elif ending == "out-of-tries":
        route = twilio.post(CALLS_URL).mock(return_value=httpx.Response(503, text="down"))
        twilio.get(CALLS_URL).mock(return_value=listing(CALLS_URL))
        for _ in range(3):  # RIMAY_OUTBOX_MAX_ATTEMPTS=3 here
            assert await worker.run_once() == 2
            clock.advance(hours=1)
    else:
        route = twilio.post(CALLS_URL).mock(side_effect=created)
        async with box.sessions() as db, db.begin():
            await db.execute(
                update(OutboxMessage).values(
                    status=MessageStatus.SENDING, claimed_at=clock.now - timedelta(hours=1), attempts=1
                )
            )
        assert await worker.run_once() == 0
        assert route.call_count == 0
    return route


@pytest.mark.parametrize("ending", ["refused", "out-of-tries", "crash"])
async def test_call_back_failed_for_good_deletes_the_number_at_once(
    box: Outboxes, caplog: pytest.LogCaptureFixture, ending: str
) -> None:
    """The number was kept only for the call-back: once it has failed for good, it goes (news stays)."""
    _, also_news = await _queue_call_backs(box, expires_at=box.clock.now + timedelta(hours=24))
    await _end_call_backs_for_good(ending, box)
    rows = await box.all_rows()
    assert [row.status for row in rows] == ["failed", "failed"]
    async with box.sessions() as db:
        contacts = (await db.scalars(select(Contact))).all()
    assert [(c.caller_id, c.purposes) for c in contacts] == [(also_news, frozenset({ContactPurpose.NEWS}))]
    # A number kept for news is no call-back number: neither row can be retried.
    assert [await retry_row(box.outbound, row.id) for row in rows] == [Retry.NUMBER_GONE] * 2
    assert [row.status for row in await box.all_rows()] == ["failed", "failed"]
    if ending == "crash":
        # The usual advice (`rimay outbox retry`) would be wrong: the number is gone.
        assert f"outbox {rows[0].id}: {STALE_REASON}" in caplog.text
        assert "call-back number was deleted, so it cannot be retried" in caplog.text
        assert f"rimay outbox retry {rows[0].id}" not in caplog.text


async def test_failed_sms_keeps_the_number_and_a_call_back_without_one_is_never_placed(box: Outboxes) -> None:
    """Only call-backs forget on failure; retry refuses them, and one re-queued anyway is cancelled."""
    box.twilio.post(MESSAGES_URL).mock(return_value=refused(400, 21211))
    calls = box.twilio.post(CALLS_URL).mock(return_value=refused(400, 21211))
    texted = await box.queue_sms()
    await box.queue_call_back()
    assert await box.worker.run_once() == 2
    async with box.sessions() as db:
        assert [c.caller_id for c in (await db.scalars(select(Contact))).all()] == [texted]
    sms, call = await box.all_rows()
    assert (sms.status, call.status) == ("failed", "failed")
    assert await retry_row(box.outbound, call.id) == Retry.NUMBER_GONE
    _, refused_call = await box.all_rows()
    assert (refused_call.status, refused_call.attempts) == ("failed", call.attempts), "left as it was"
    # The worker is the last line: a row re-queued past the retry check still never reaches Twilio.
    async with box.sessions() as db, db.begin():
        assert await OutboxRepository(db).requeue(call.id, box.clock.now)
    box.clock.advance(minutes=1)
    assert await box.worker.run_once() == 1
    assert calls.call_count == 1, "the re-queued call-back must not reach Twilio"
    _, call = await box.all_rows()
    assert (call.status, call.last_error) == ("cancelled", "no contact consented to callback")
