"""What the outbox tests share: Twilio's answers, a fake Twilio account, and the worker rig a test takes."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from app.contacts.models import ContactPurpose
from app.outbox.models import OutboxMessage
from app.outbox.service import Outbox
from app.outbox.twilio_http import client_factory
from app.outbox.worker import OutboxWorker
from app.settings import Settings
from app.simulator import TwilioSigner
from tests.outbound import ACCOUNT_SID, HOTLINE, MESSAGES_URL, NUMBER, Clock, Sessions, outbound_settings
from tests.test_outbox_service import add_caller, all_rows

PATH = "/twilio/sms/status"
Effect = Callable[[httpx.Request], httpx.Response] | httpx.Response | Exception


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


def report_fields(status: str | None, sid: str | None, **extra: str) -> dict[str, str]:
    """A delivery report's fields as Twilio posts them, numbers included; None leaves a field out."""
    params = {"AccountSid": ACCOUNT_SID, "To": NUMBER, "From": HOTLINE, **extra}
    if sid is not None:
        params["MessageSid"] = params["SmsSid"] = sid
    if status is not None:
        params["MessageStatus"] = params["SmsStatus"] = status
    return params


async def post_signed(
    client: httpx.AsyncClient, signer: TwilioSigner, path: str, params: dict[str, str]
) -> httpx.Response:
    """Post fields to a path with Twilio's signature for them."""
    return await client.post(path, data=params, headers=signer.headers(signer.public(path), params))


async def report_to_row(
    client: httpx.AsyncClient, signer: TwilioSigner, sid: str, status: str, outbox: object
) -> httpx.Response:
    """A delivery report Twilio posts to the callback URL naming the row, correctly signed."""
    return await post_signed(client, signer, f"{PATH}?outbox={outbox}", report_fields(status, sid))


async def queue_sms(sessions: Sessions, outbound: Settings, clock: Clock, text: str = "Hola") -> int:
    """A consenting caller with one queued SMS; the caller's id."""
    caller_id = await add_caller(sessions, outbound)
    async with sessions() as db, db.begin():
        assert await Outbox(db, outbound, clock=clock).enqueue_sms(caller_id, text) is not None
    return caller_id


@dataclass(frozen=True)
class Outboxes:
    """What an outbox test works with: mocked Twilio, a worker, the database, settings, time, a fake."""

    twilio: respx.MockRouter
    worker: OutboxWorker
    sessions: Sessions
    outbound: Settings
    clock: Clock
    fake: FakeTwilio

    async def queue_sms(self, text: str = "Hola") -> int:
        """A consenting caller with one queued SMS; the caller's id."""
        return await queue_sms(self.sessions, self.outbound, self.clock, text)

    async def queue_call_back(self, not_before: datetime | None = None) -> OutboxMessage:
        """A caller who consented to a call-back only, with the call-back queued; its row."""
        caller_id = await add_caller(self.sessions, self.outbound, [ContactPurpose.CALLBACK])
        async with self.sessions() as db, db.begin():
            outbox = Outbox(db, self.outbound, clock=self.clock)
            call = await outbox.enqueue_call(caller_id, "hotline", not_before=not_before)
        assert call is not None
        return call

    async def all_rows(self) -> list[OutboxMessage]:
        """Every outbox row, oldest first."""
        return await all_rows(self.sessions)

    async def one_row(self) -> OutboxMessage:
        """The only outbox row."""
        [row] = await all_rows(self.sessions)
        return row

    async def sent_row(self) -> OutboxMessage:
        """One SMS the worker handed to the fake Twilio account; its row."""
        self.twilio.post(MESSAGES_URL).mock(side_effect=self.fake.create)
        await self.queue_sms()
        assert await self.worker.run_once() == 1
        return await self.one_row()


@pytest.fixture
def outbound(settings: Settings) -> Settings:
    """Settings that can send: three attempts at most, a cap high enough for the concurrency test."""
    return outbound_settings(settings, outbound_daily_cap=50, outbox_max_attempts=3)


@pytest.fixture
async def box(
    twilio: respx.MockRouter, sessions: Sessions, outbound: Settings, clock: Clock
) -> AsyncIterator[Outboxes]:
    """A worker with the test's clock and seeded jitter, over an empty fake Twilio account."""
    worker = OutboxWorker(sessions, outbound, client_factory, clock=clock, rng=random.Random(7))
    yield Outboxes(twilio, worker, sessions, outbound, clock, FakeTwilio(clock))
    await worker.aclose()
