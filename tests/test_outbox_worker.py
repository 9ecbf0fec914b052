"""The outbox worker against a mocked Twilio REST API: sends once, retries, gives up, never duplicates."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs

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
from app.outbox.twilio_http import client_factory
from app.outbox.worker import AMBIGUOUS_SETTLE, STALE_REASON, OutboxWorker
from app.settings import Settings
from tests.outbound import (
    CALLS_URL,
    HOTLINE,
    MESSAGES_URL,
    NUMBER,
    Clock,
    Sessions,
    outbound_settings,
)
from tests.pg import PostgresServer
from tests.test_outbox_service import add_caller, all_rows, hits, stored_bytes

PUBLIC = "https://hotline.example.org"


def created(request: httpx.Request) -> httpx.Response:
    """Twilio's answer to a create: a new resource with a fresh sid."""
    prefix = "CA" if request.url.path.endswith("Calls.json") else "SM"
    return httpx.Response(201, json={"sid": prefix + uuid.uuid4().hex, "status": "queued"})


def created_sms() -> httpx.Response:
    """A created message, for lists of answers."""
    return httpx.Response(201, json={"sid": "SM" + uuid.uuid4().hex, "status": "queued"})


def refused(status: int, code: int) -> httpx.Response:
    """Twilio's error body, which may quote the number."""
    message = f"The 'To' number {NUMBER} is not a valid phone number."
    return httpx.Response(status, json={"code": code, "message": message, "status": status})


def form(request: httpx.Request) -> dict[str, str]:
    """The posted form fields."""
    return {key: values[0] for key, values in parse_qs(request.content.decode()).items()}


def listing(url: str, *records: dict[str, str]) -> httpx.Response:
    """One page of Twilio's list of messages (Messages.json) or calls (Calls.json), newest first."""
    key = "calls" if url.endswith("Calls.json") else "messages"
    page = {"page": 0, "page_size": 20, "next_page_uri": None, "previous_page_uri": None, "start": 0}
    return httpx.Response(200, json={key: list(records), **page})


@pytest.fixture
def outbound(settings: Settings) -> Settings:
    """Settings that can send, with a cap high enough for the concurrency test."""
    return outbound_settings(settings, outbound_daily_cap=50, outbox_max_attempts=3)


@pytest.fixture
async def worker(sessions: Sessions, outbound: Settings, clock: Clock) -> AsyncIterator[OutboxWorker]:
    """A worker with a fixed clock and seeded jitter."""
    made = OutboxWorker(sessions, outbound, client_factory, clock=clock, rng=random.Random(7))
    yield made
    await made.aclose()


async def queue_sms(sessions: Sessions, outbound: Settings, clock: Clock, text: str = "Hola") -> int:
    """A consenting caller with one queued SMS; the caller's id."""
    caller_id = await add_caller(sessions, outbound)
    async with sessions() as db, db.begin():
        assert await Outbox(db, outbound, clock=clock).enqueue_sms(caller_id, text) is not None
    return caller_id


async def test_sms_is_sent_once_with_the_decrypted_number(
    twilio: respx.MockRouter, worker: OutboxWorker, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """To is the caller's number (from the encrypted contact), From the hotline, with a status callback."""
    route = twilio.post(MESSAGES_URL).mock(side_effect=created)
    await queue_sms(sessions, outbound, clock, "Su pregunta fue respondida.")
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    assert route.call_count == 1
    [row] = await all_rows(sessions)
    assert form(route.calls.last.request) == {
        "To": NUMBER,
        "From": HOTLINE,
        "Body": "Su pregunta fue respondida.",
        "StatusCallback": f"{PUBLIC}/twilio/sms/status?outbox={row.id}",
    }
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.provider_sid is not None
    assert row.provider_sid.startswith("SM")
    assert row.sent_at == clock.now


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
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    first: httpx.Response | Exception,
    ambiguous: bool,
) -> None:
    """The row waits, then is sent: attempts == 2. After a failure that may have reached Twilio the wait
    is AMBIGUOUS_SETTLE and Twilio is asked first (nothing found here); a sure one waits <= 30 s, unasked."""
    route = twilio.post(MESSAGES_URL).mock(side_effect=[first, created_sms()])
    lookup = twilio.get(MESSAGES_URL).mock(return_value=listing(MESSAGES_URL))
    await queue_sms(sessions, outbound, clock)
    assert await worker.run_once() == 1
    [row] = await all_rows(sessions)
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
    assert await worker.run_once() == 0  # not due yet
    clock.advance(seconds=1)
    assert await worker.run_once() == 1
    [row] = await all_rows(sessions)
    assert (row.status, row.attempts, route.call_count) == ("sent", 2, 2)
    assert lookup.call_count == (1 if ambiguous else 0)


@pytest.mark.parametrize(("status", "code"), [(400, 21211), (400, 21610), (401, 20003), (404, 20404)])
async def test_client_errors_fail_at_once_with_a_masked_error(
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    status: int,
    code: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An invalid or unsubscribed number is not retried; the error kept never quotes the number."""
    route = twilio.post(MESSAGES_URL).mock(return_value=refused(status, code))
    await queue_sms(sessions, outbound, clock)
    assert await worker.run_once() == 1
    clock.advance(hours=2)
    assert await worker.run_once() == 0
    [row] = await all_rows(sessions)
    assert (row.status, row.attempts, route.call_count) == ("failed", 1, 1)
    assert row.last_error is not None
    assert f"HTTP {status} code {code}" in row.last_error
    assert "[phone]" in row.last_error
    assert hits(row.last_error.encode()) == []
    assert hits(caplog.text.encode()) == []
    assert any(r.levelno == logging.ERROR and str(row.id) in r.getMessage() for r in caplog.records)


async def test_gives_up_after_max_attempts_and_logs_an_error(
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three 503s (RIMAY_OUTBOX_MAX_ATTEMPTS=3 here): failed, logged at ERROR with the row id.

    A 503 may come after Twilio stored the message, so attempts 2 and 3 ask Twilio first (nothing there).
    """
    route = twilio.post(MESSAGES_URL).mock(return_value=httpx.Response(503, text="down"))
    lookup = twilio.get(MESSAGES_URL).mock(return_value=listing(MESSAGES_URL))
    await queue_sms(sessions, outbound, clock)
    for _ in range(3):
        assert await worker.run_once() == 1
        clock.advance(hours=2)
    assert await worker.run_once() == 0
    [row] = await all_rows(sessions)
    assert (row.status, row.attempts, route.call_count, lookup.call_count) == ("failed", 3, 3, 2)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        f"outbox {row.id}: failed after 3 attempt(s): HTTP 503 code 503: Unable to create record"
    ]


async def test_call_back_runs_the_voice_webhook_and_then_deletes_the_number(
    twilio: respx.MockRouter, worker: OutboxWorker, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """calls.create points at /twilio/voice; the call-back contact is deleted once the call is placed."""
    route = twilio.post(CALLS_URL).mock(side_effect=created)
    only_callback = await add_caller(sessions, outbound, [ContactPurpose.CALLBACK])
    also_news = await add_caller(sessions, outbound, [ContactPurpose.CALLBACK, ContactPurpose.NEWS])
    async with sessions() as db, db.begin():
        for caller_id in (only_callback, also_news):
            await Outbox(db, outbound, clock=clock).enqueue_call(caller_id, "hotline", not_before=clock.now)
    assert await worker.run_once() == 2
    assert route.call_count == 2
    assert form(route.calls.last.request) == {
        "To": NUMBER,
        "From": HOTLINE,
        "Url": f"{PUBLIC}/twilio/voice",
        "StatusCallback": f"{PUBLIC}/twilio/voice/status",
    }
    assert [row.status for row in await all_rows(sessions)] == ["sent", "sent"]
    async with sessions() as db:
        contacts = (await db.scalars(select(Contact))).all()
    assert [(c.caller_id, c.purposes) for c in contacts] == [(also_news, frozenset({ContactPurpose.NEWS}))]


async def test_scheduled_rows_wait_and_opt_out_before_sending_cancels(
    twilio: respx.MockRouter, worker: OutboxWorker, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """not_before is honoured; a caller who says STOP after queueing gets nothing."""
    route = twilio.post(MESSAGES_URL).mock(side_effect=created)
    later = await add_caller(sessions, outbound)
    stopped = await queue_sms(sessions, outbound, clock)
    async with sessions() as db, db.begin():
        await Outbox(db, outbound, clock=clock).enqueue_sms(
            later, "luego", not_before=clock.now + timedelta(hours=1)
        )
        await db.execute(
            update(OutboxMessage).where(OutboxMessage.caller_id == stopped).values(status="pending")
        )
        await db.execute(update(Caller).where(Caller.id == stopped).values(opted_out=True))
    assert await worker.run_once() == 1
    assert route.call_count == 0
    clock.advance(hours=1)
    assert await worker.run_once() == 1
    rows = {row.caller_id: row for row in await all_rows(sessions)}
    assert (rows[stopped].status, rows[stopped].last_error) == ("cancelled", "caller opted out")
    assert rows[later].status == "sent"
    assert route.call_count == 1


async def test_stale_sending_row_is_failed_for_review_never_resent(
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker died mid-send: after the lease the row is failed as unknown; a fresh claim is left alone."""
    route = twilio.post(MESSAGES_URL).mock(side_effect=created)
    lookup = twilio.get(MESSAGES_URL).mock(return_value=listing(MESSAGES_URL))
    await queue_sms(sessions, outbound, clock, "huérfano")
    await queue_sms(sessions, outbound, clock, "en curso")
    lease = timedelta(seconds=outbound.outbox_lease_seconds)
    async with sessions() as db, db.begin():
        for body, claimed in (
            ("huérfano", clock.now - lease - timedelta(seconds=1)),
            ("en curso", clock.now),
        ):
            await db.execute(
                update(OutboxMessage)
                .where(OutboxMessage.body == body)
                .values(status=MessageStatus.SENDING, claimed_at=claimed, attempts=1)
            )
    assert await worker.run_once() == 0
    assert route.call_count == 0
    orphan, running = await all_rows(sessions)
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
    assert await worker.run_once() == 1
    assert (route.call_count, lookup.call_count) == (1, 1), "Twilio is asked before the resend"
    orphan, _ = await all_rows(sessions)
    assert (orphan.status, orphan.attempts) == ("sent", 1)


async def test_no_number_at_rest_or_in_logs_after_a_full_run(
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    database_url: str,
    postgres_server: PostgresServer | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SMS sent, a refusal quoting the number, a call-back: the database and the logs never hold it."""
    caplog.set_level(logging.DEBUG)
    twilio.post(MESSAGES_URL).mock(side_effect=[created_sms(), refused(400, 21211)])
    twilio.post(CALLS_URL).mock(side_effect=created)
    await queue_sms(sessions, outbound, clock, "uno")
    await queue_sms(sessions, outbound, clock, "dos")
    caller_id = await add_caller(sessions, outbound, [ContactPurpose.CALLBACK])
    async with sessions() as db, db.begin():
        await Outbox(db, outbound, clock=clock).enqueue_call(caller_id, "hotline", not_before=None)
    assert await worker.run_once() == 3
    assert sorted(row.status for row in await all_rows(sessions)) == ["failed", "sent", "sent"]
    assert hits(stored_bytes(database_url, postgres_server)) == []
    assert hits("\n".join(r.getMessage() for r in caplog.records).encode()) == []
    assert utcnow() >= clock.now


async def _end_call_backs_for_good(
    ending: str, twilio: respx.MockRouter, worker: OutboxWorker, sessions: Sessions, clock: Clock
) -> respx.Route:
    """Make every queued call-back fail for good: refused, out of tries, or lost in a worker crash."""
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
        async with sessions() as db, db.begin():
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
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    ending: str,
) -> None:
    """The number was kept only for the call-back: once it has failed for good, it goes (news stays)."""
    window = clock.now + timedelta(hours=24)
    only_callback = await add_caller(sessions, outbound, [ContactPurpose.CALLBACK], expires_at=window)
    also_news = await add_caller(sessions, outbound, [ContactPurpose.CALLBACK, ContactPurpose.NEWS])
    async with sessions() as db, db.begin():
        for caller_id in (only_callback, also_news):
            await Outbox(db, outbound, clock=clock).enqueue_call(caller_id, "hotline", not_before=None)
    await _end_call_backs_for_good(ending, twilio, worker, sessions, clock)
    rows = await all_rows(sessions)
    assert [row.status for row in rows] == ["failed", "failed"]
    async with sessions() as db:
        contacts = (await db.scalars(select(Contact))).all()
    assert [(c.caller_id, c.purposes) for c in contacts] == [(also_news, frozenset({ContactPurpose.NEWS}))]
    # A number kept for news is no call-back number: neither row can be retried.
    assert [await retry_row(outbound, row.id) for row in rows] == [Retry.NUMBER_GONE] * 2
    assert [row.status for row in await all_rows(sessions)] == ["failed", "failed"]
    if ending == "crash":
        # The usual advice (`rimay outbox retry`) would be wrong: the number is gone.
        assert f"outbox {rows[0].id}: {STALE_REASON}" in caplog.text
        assert "call-back number was deleted, so it cannot be retried" in caplog.text
        assert f"rimay outbox retry {rows[0].id}" not in caplog.text


async def test_failed_sms_keeps_the_number_and_a_call_back_without_one_is_never_placed(
    twilio: respx.MockRouter, worker: OutboxWorker, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """Only call-backs forget on failure; retry refuses them, and one re-queued anyway is cancelled."""
    twilio.post(MESSAGES_URL).mock(return_value=refused(400, 21211))
    calls = twilio.post(CALLS_URL).mock(return_value=refused(400, 21211))
    texted = await queue_sms(sessions, outbound, clock)
    called = await add_caller(sessions, outbound, [ContactPurpose.CALLBACK])
    async with sessions() as db, db.begin():
        await Outbox(db, outbound, clock=clock).enqueue_call(called, "hotline", not_before=None)
    assert await worker.run_once() == 2
    async with sessions() as db:
        assert [c.caller_id for c in (await db.scalars(select(Contact))).all()] == [texted]
    sms, call = await all_rows(sessions)
    assert (sms.status, call.status) == ("failed", "failed")
    assert await retry_row(outbound, call.id) == Retry.NUMBER_GONE
    _, refused_call = await all_rows(sessions)
    assert (refused_call.status, refused_call.attempts) == ("failed", call.attempts), "left as it was"
    # The worker is the last line: a row re-queued past the retry check still never reaches Twilio.
    async with sessions() as db, db.begin():
        assert await OutboxRepository(db).requeue(call.id, clock.now)
    clock.advance(minutes=1)
    assert await worker.run_once() == 1
    assert calls.call_count == 1, "the re-queued call-back must not reach Twilio"
    _, call = await all_rows(sessions)
    assert (call.status, call.last_error) == ("cancelled", "no contact consented to callback")
