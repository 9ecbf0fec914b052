"""Nothing outbound is lost or doubled when Twilio's answer is lost: lookups before resends, early reports."""

from __future__ import annotations

import logging
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx
from sqlalchemy import select

from app.contacts.models import Contact, ContactPurpose
from app.outbox.models import OutboxMessage
from app.outbox.service import Outbox
from app.outbox.twilio_http import client_factory
from app.outbox.worker import AMBIGUOUS_SETTLE, OutboxWorker
from app.settings import Settings
from app.simulator import TwilioSigner
from tests.outbound import CALLS_URL, HOTLINE, MESSAGES_URL, NUMBER, Clock, Sessions, outbound_settings
from tests.pg import PostgresServer
from tests.test_outbox_service import add_caller, all_rows, hits, stored_bytes
from tests.test_outbox_worker import form, listing, queue_sms

PATH = "/twilio/sms/status"
E164 = re.compile(r"\+?\d{8,}")
Effect = Callable[[httpx.Request], httpx.Response] | httpx.Response | Exception


def in_turn(*effects: Effect) -> Callable[[httpx.Request], httpx.Response]:
    """One answer per request, in order: a response, an error raised, or a handler called."""
    queue = list(effects)

    def answer(request: httpx.Request) -> httpx.Response:
        assert queue, "more requests than the test expects"
        effect = queue.pop(0)
        if isinstance(effect, Exception):
            raise effect
        return effect if isinstance(effect, httpx.Response) else effect(request)

    return answer


class FakeTwilio:
    """Twilio's Messages and Calls: what it created, as its list endpoints return it (newest first)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.records: dict[str, list[dict[str, str]]] = {"messages": [], "calls": []}

    def create(self, request: httpx.Request) -> httpx.Response:
        """Accept a message or call, as Twilio does."""
        fields = form(request)
        kind, prefix = ("calls", "CA") if request.url.path.endswith("Calls.json") else ("messages", "SM")
        record = {
            "sid": prefix + uuid.uuid4().hex,
            "to": fields["To"],
            "from": fields.get("From", HOTLINE),
            "body": fields.get("Body", ""),
            "direction": "outbound-api",
            "status": "queued",
            "date_created": format_datetime(self.clock.now, usegmt=True),
        }
        self.records[kind].insert(0, record)
        return httpx.Response(201, json=record)

    def accepted_then_timed_out(self, request: httpx.Request) -> httpx.Response:
        """Twilio took it, but its answer never arrived."""
        self.create(request)
        raise httpx.ReadTimeout("timed out")

    def listed(self, request: httpx.Request) -> httpx.Response:
        """The list endpoint, filtered by To and From as Twilio does."""
        wanted = {"to": request.url.params.get("To"), "from": request.url.params.get("From")}
        kind = "calls" if request.url.path.endswith("Calls.json") else "messages"
        found = [r for r in self.records[kind] if all(v is None or r[k] == v for k, v in wanted.items())]
        return listing(request.url.path, *found)

    def sids(self, kind: str = "messages") -> list[str]:
        """Sids of what Twilio holds, oldest first."""
        return [record["sid"] for record in reversed(self.records[kind])]


@pytest.fixture
def outbound(settings: Settings) -> Settings:
    """Settings that can send, three attempts at most."""
    return outbound_settings(settings, outbound_daily_cap=50, outbox_max_attempts=3)


@pytest.fixture
async def worker(sessions: Sessions, outbound: Settings, clock: Clock) -> AsyncIterator[OutboxWorker]:
    """A worker with a fixed clock and seeded jitter."""
    made = OutboxWorker(sessions, outbound, client_factory, clock=clock, rng=random.Random(7))
    yield made
    await made.aclose()


@pytest.fixture
def fake(clock: Clock) -> FakeTwilio:
    """An empty Twilio account."""
    return FakeTwilio(clock)


async def report(
    client: httpx.AsyncClient, signer: TwilioSigner, sid: str, status: str, outbox: object
) -> httpx.Response:
    """A delivery report Twilio posts to the callback URL naming the row, correctly signed."""
    path = f"{PATH}?outbox={outbox}"
    params = {"AccountSid": "AC" + "1" * 32, "To": NUMBER, "From": HOTLINE}
    params |= {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status}
    return await client.post(path, data=params, headers=signer.headers(signer.public(path), params))


async def one_row(sessions: Sessions) -> OutboxMessage:
    """The only outbox row."""
    [row] = await all_rows(sessions)
    return row


async def test_timeout_after_twilio_accepted_is_reconciled_not_resent(
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    fake: FakeTwilio,
) -> None:
    """One POST over the whole run; the retry finds the message at Twilio and records its sid."""
    posts = twilio.post(MESSAGES_URL).mock(side_effect=in_turn(fake.accepted_then_timed_out, fake.create))
    lookups = twilio.get(MESSAGES_URL).mock(side_effect=fake.listed)
    await queue_sms(sessions, outbound, clock, "Su pregunta fue respondida.")
    started = clock.now
    assert await worker.run_once() == 1
    row = await one_row(sessions)
    assert (row.status, row.ambiguous_since, row.provider_sid) == ("pending", started, None)
    assert row.last_error == "ReadTimeout calling Twilio"
    clock.advance(seconds=AMBIGUOUS_SETTLE.total_seconds() - 1)
    assert await worker.run_once() == 0, "Twilio may still be working on it: not asked yet"
    clock.advance(seconds=1)
    assert await worker.run_once() == 1
    clock.advance(hours=2)
    assert await worker.run_once() == 0
    row = await one_row(sessions)
    assert (row.status, row.attempts, row.provider_sid) == ("sent", 2, fake.sids()[0])
    assert (posts.call_count, lookups.call_count, len(fake.sids())) == (1, 1, 1)
    asked = lookups.calls.last.request.url.params
    assert (asked["To"], asked["From"], asked["PageSize"]) == (NUMBER, HOTLINE, "20")


async def test_timeout_with_nothing_at_twilio_is_sent_again_exactly_once(
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    fake: FakeTwilio,
) -> None:
    """Twilio holds only other messages (other text, inbound, before the attempt): one more POST."""
    await queue_sms(sessions, outbound, clock, "Hola")
    decoys = [("Chau", "outbound-api", 0), ("Hola", "inbound", 0), ("Hola", "outbound-api", -3600)]
    for body, direction, offset in decoys:
        when = format_datetime(clock.now + timedelta(seconds=offset), usegmt=True)
        record = {"sid": "SM" + uuid.uuid4().hex, "to": NUMBER, "from": HOTLINE, "body": body}
        fake.records["messages"].insert(0, record | {"direction": direction, "date_created": when})
    posts = twilio.post(MESSAGES_URL).mock(side_effect=in_turn(httpx.ReadTimeout("timed out"), fake.create))
    lookups = twilio.get(MESSAGES_URL).mock(side_effect=fake.listed)
    assert await worker.run_once() == 1
    clock.advance(hours=1)
    assert await worker.run_once() == 1
    clock.advance(hours=2)
    assert await worker.run_once() == 0
    row = await one_row(sessions)
    assert (row.status, row.attempts, row.provider_sid) == ("sent", 2, fake.sids()[-1])
    assert (posts.call_count, lookups.call_count) == (2, 1)


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("busy")]
)
async def test_nothing_sent_is_retried_without_a_lookup(
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    fake: FakeTwilio,
    error: Exception,
) -> None:
    """No connection means no request reached Twilio: the retry just sends."""
    posts = twilio.post(MESSAGES_URL).mock(side_effect=in_turn(error, fake.create))
    lookups = twilio.get(MESSAGES_URL).mock(side_effect=fake.listed)
    await queue_sms(sessions, outbound, clock)
    assert await worker.run_once() == 1
    assert (await one_row(sessions)).ambiguous_since is None
    clock.advance(hours=1)
    assert await worker.run_once() == 1
    row = await one_row(sessions)
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
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    fake: FakeTwilio,
    failure: httpx.Response | Exception,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each failed lookup is an attempt with backoff; out of attempts, the row is failed for an operator."""
    posts = twilio.post(MESSAGES_URL).mock(side_effect=fake.accepted_then_timed_out)
    lookups = twilio.get(MESSAGES_URL).mock(side_effect=[failure] * 3)
    await queue_sms(sessions, outbound, clock)
    started = clock.now
    assert await worker.run_once() == 1
    clock.advance(hours=1)
    assert await worker.run_once() == 1
    row = await one_row(sessions)
    assert (row.status, row.attempts, row.ambiguous_since) == ("pending", 2, started)
    assert row.next_attempt_at is not None
    assert row.next_attempt_at > clock.now
    assert row.last_error is not None
    assert row.last_error.startswith("checking Twilio: ")
    clock.advance(hours=2)
    assert await worker.run_once() == 1
    clock.advance(hours=4)
    assert await worker.run_once() == 0
    row = await one_row(sessions)
    assert (row.status, row.attempts, row.provider_sid) == ("failed", 3, None)
    assert (posts.call_count, lookups.call_count) == (1, 2)
    assert f"outbox {row.id}: failed after 3 attempt(s): checking Twilio" in caplog.text
    assert hits(caplog.text.encode()) == []


async def test_refused_lookup_fails_the_row_at_once(
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    fake: FakeTwilio,
) -> None:
    """A lookup Twilio refuses (401: bad credentials) will not get better by waiting: failed, not sent."""
    posts = twilio.post(MESSAGES_URL).mock(side_effect=fake.accepted_then_timed_out)
    refusal = {"code": 20003, "message": "Authenticate", "status": 401}
    twilio.get(MESSAGES_URL).mock(return_value=httpx.Response(401, json=refusal))
    await queue_sms(sessions, outbound, clock)
    assert await worker.run_once() == 1
    clock.advance(hours=1)
    assert await worker.run_once() == 1
    row = await one_row(sessions)
    assert (row.status, row.last_error, posts.call_count) == (
        "failed",
        "checking Twilio: HTTP 401: Unable to fetch page",
        1,
    )


async def test_call_back_timed_out_after_twilio_placed_it_is_not_placed_twice(
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    fake: FakeTwilio,
) -> None:
    """The lookup finds the call from the hotline to the caller; its sid is recorded, the number deleted."""
    posts = twilio.post(CALLS_URL).mock(side_effect=fake.accepted_then_timed_out)
    lookups = twilio.get(CALLS_URL).mock(side_effect=fake.listed)
    caller_id = await add_caller(sessions, outbound, [ContactPurpose.CALLBACK])
    async with sessions() as db, db.begin():
        await Outbox(db, outbound, clock=clock).enqueue_call(caller_id, "hotline", not_before=None)
    assert await worker.run_once() == 1
    async with sessions() as db:
        assert (await db.scalars(select(Contact))).all(), "kept: the call may have to be placed again"
    clock.advance(hours=1)
    assert await worker.run_once() == 1
    row = await one_row(sessions)
    assert (row.status, row.provider_sid) == ("sent", fake.sids("calls")[0])
    assert (posts.call_count, lookups.call_count) == (1, 1)
    asked = lookups.calls.last.request.url.params
    assert (asked["To"], asked["From"]) == (NUMBER, HOTLINE)
    async with sessions() as db:
        assert (await db.scalars(select(Contact))).all() == [], "placed: the call-back number is deleted"


async def test_a_message_another_row_holds_is_not_taken(
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    fake: FakeTwilio,
) -> None:
    """Two rows with the same text to one caller: the lookup skips the sid the first row recorded."""
    twilio.post(MESSAGES_URL).mock(side_effect=in_turn(fake.create, fake.accepted_then_timed_out))
    twilio.get(MESSAGES_URL).mock(side_effect=fake.listed)
    caller_id = await queue_sms(sessions, outbound, clock, "Hola")
    async with sessions() as db, db.begin():
        await Outbox(db, outbound, clock=clock).enqueue_sms(caller_id, "Hola")
    assert await worker.run_once() == 2
    clock.advance(hours=1)
    assert await worker.run_once() == 1
    first, second = await all_rows(sessions)
    assert [first.provider_sid, second.provider_sid] == fake.sids()
    assert (first.status, second.status) == ("sent", "sent")


async def test_two_messages_at_twilio_record_the_oldest_and_warn(
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    fake: FakeTwilio,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two lost answers that both reached Twilio: the doubling already happened; it is said, not hidden."""
    twilio.post(MESSAGES_URL).mock(side_effect=fake.accepted_then_timed_out)
    twilio.get(MESSAGES_URL).mock(side_effect=in_turn(listing(MESSAGES_URL), fake.listed))
    await queue_sms(sessions, outbound, clock)
    assert await worker.run_once() == 1
    clock.advance(hours=1)
    assert await worker.run_once() == 1  # the list lagged: nothing found, sent again (timed out again)
    clock.advance(hours=1)
    assert await worker.run_once() == 1
    row = await one_row(sessions)
    assert (row.status, row.provider_sid) == ("sent", fake.sids()[0])
    assert f"outbox {row.id}: Twilio holds 2 messages for it; the oldest is recorded" in caplog.text


async def test_no_number_in_the_database_logs_or_callback_urls(
    twilio: respx.MockRouter,
    worker: OutboxWorker,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    fake: FakeTwilio,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    database_url: str,
    postgres_server: PostgresServer | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Timeouts, lookups (whose URLs carry the number to Twilio) and early reports leave no number behind."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # it logs each lookup's URL, ?To= included: masked
    posts = twilio.post(MESSAGES_URL).mock(side_effect=in_turn(fake.accepted_then_timed_out, fake.create))
    twilio.get(MESSAGES_URL).mock(side_effect=in_turn(httpx.Response(503, text="down"), fake.listed))
    await queue_sms(sessions, outbound, clock, "uno")
    await queue_sms(sessions, outbound, clock, "dos")
    for _ in range(3):
        await worker.run_once()
        clock.advance(hours=2)
    rows = await all_rows(sessions)
    assert [row.status for row in rows] == ["sent", "sent"]
    await report(client, signer, str(rows[1].provider_sid), "delivered", rows[1].id)
    callbacks = [form(call.request)["StatusCallback"] for call in posts.calls]
    assert [E164.search(url) for url in callbacks] == [None, None]
    assert hits(stored_bytes(database_url, postgres_server)) == []
    assert hits("\n".join(r.getMessage() for r in caplog.records).encode()) == []
