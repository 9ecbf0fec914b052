"""Two uvicorn workers and two outbox workers on one PostgreSQL: nothing is stored, sent or admitted twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import select

from app.apikeys.service import ApiKeyService
from app.flows.events import Digits
from app.flows.model import FlowDefinition
from app.outbox.models import OutboxMessage
from app.privacy.pseudonym import Pseudonymizer
from app.sessions.models import CallSession, WebhookDelivery
from app.sessions.service import Channel, ConversationService, Replay, Turn
from app.settings import Settings
from app.simulator import Call, TwilioSigner, parse_twiml
from tests.conftest import AUTH_TOKEN, CALLER, ROOT
from tests.outbound import ACCOUNT_SID, HOTLINE, Clock, sessions_for
from tests.outbox_support import queue_sms
from tests.test_survey import answers, rows
from tests.workers import (
    CONTACT_KEY,
    SECRET_KEY,
    Served,
    drain_in_processes,
    libpq,
    owned_by,
    pinned_clients,
    serving,
    stub_twilio,
)

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("database_url", ["postgres"], indirect=True)]

REDELIVERIES = 50
RATE = 10
"""RIMAY_STATS_REQUESTS_PER_MINUTE for the service."""
OVER = 14
"""Requests beyond the limit, fired together with the admitted ones."""
MESSAGES = 24


async def at_once(
    requests: dict[int, list[Coroutine[Any, Any, httpx.Response]]],
) -> dict[int, list[httpx.Response]]:
    """Every worker's requests sent together (not one worker's after the other's); replies by worker."""
    pids = list(requests)
    answered = await asyncio.gather(*(asyncio.gather(*requests[pid]) for pid in pids))
    return {pid: list(replies) for pid, replies in zip(pids, answered, strict=True)}


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[Served]:
    """The real service with two uvicorn workers on the test's PostgreSQL database."""
    env = {"RIMAY_STATS_REQUESTS_PER_MINUTE": str(RATE)}
    with serving(tmp_path, database_url, workers=2, env=env) as service:
        yield service


@pytest.fixture
async def pinned(served: Served) -> AsyncIterator[dict[int, list[httpx.AsyncClient]]]:
    """Half the requests' connections held by each worker, so both answer every burst."""
    clients = await pinned_clients(served, (REDELIVERIES + 1) // 2)
    yield clients
    for worker_clients in clients.values():
        for client in worker_clients:
            await client.aclose()


async def test_fifty_redeliveries_across_two_workers_store_one_answer(
    served: Served,
    pinned: dict[int, list[httpx.AsyncClient]],
    database_url: str,
    flows: dict[str, FlowDefinition],
) -> None:
    """One signed answer fifty times at once, half to each worker: one answer, fifty identical replies."""
    signer = TwilioSigner(AUTH_TOKEN, served.base_url)
    async with httpx.AsyncClient(base_url=served.base_url) as http:
        phone = Call(client=http, signer=signer, flows=flows, caller=CALLER)
        response = await phone.post("/twilio/voice", {"CallStatus": "ringing"})
        for key in ("1", "2", "1"):  # Spanish, the survey, consent: now the gender question
            action = parse_twiml(response.text, flows).gather_action
            assert action is not None
            response = await phone.post(action, {"Digits": key, "CallStatus": "in-progress"})
    assert (
        parse_twiml(response.text, flows).prompts[0].text == flows["hotline"].nodes["q_gender"].prompt["es"]
    )
    action = parse_twiml(response.text, flows).gather_action
    assert action is not None
    params = {
        "CallSid": phone.call_sid,
        "AccountSid": phone.account_sid,
        "From": CALLER,
        "To": phone.hotline,
        "Direction": "inbound",
        "Digits": "1",
        "CallStatus": "in-progress",
    }
    headers = signer.headers(action, params)
    path = action.removeprefix(served.base_url)

    async def redeliver(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(path, data=params, headers=headers)

    replies = await at_once(
        {pid: [redeliver(client) for client in clients] for pid, clients in pinned.items()}
    )
    await owned_by(served, replies)
    everything = [reply for per_worker in replies.values() for reply in per_worker]
    assert len(everything) >= REDELIVERIES
    assert {reply.status_code for reply in everything} == {200}
    assert len({reply.text for reply in everything}) == 1, "every redelivery gets the stored TwiML"
    [first] = parse_twiml(everything[0].text, flows).prompts[:1]
    assert first.text == flows["hotline"].nodes["q_age"].prompt["es"]
    assert answers(database_url) == [("genero", "mujer")]
    [session] = rows(database_url, CallSession)
    assert session.step == 4
    assert Counter(d.step for d in rows(database_url, WebhookDelivery)) == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}


async def test_the_rate_limit_holds_across_two_workers(
    served: Served, pinned: dict[int, list[httpx.AsyncClient]], database_url: str
) -> None:
    """RATE + OVER requests with one key at once, split over both workers: exactly RATE admitted."""
    async with sessions_for(database_url) as sessions, sessions() as db:
        _, token = await ApiKeyService(db).create("Test agency", ["stats:read"])
        await db.commit()
    headers = {"Authorization": f"Bearer {token}"}
    share = (RATE + OVER) // len(pinned)
    replies = await at_once(
        {
            pid: [client.get("/api/v1/stats/cases", headers=headers) for client in clients[:share]]
            for pid, clients in pinned.items()
        }
    )
    await owned_by(served, replies)
    statuses = Counter(reply.status_code for per_worker in replies.values() for reply in per_worker)
    assert statuses == {200: RATE, 429: OVER}
    refused = [r for per_worker in replies.values() for r in per_worker if r.status_code == 429]
    assert all(1 <= int(r.headers["retry-after"]) <= 60 for r in refused)


@pytest.fixture
def sender_settings(database_url: str, tmp_path: Path) -> Settings:
    """What both outbox workers are configured with (the same keys, so they can read the contacts)."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=SECRET_KEY,
        contact_key=CONTACT_KEY,
        twilio_auth_token=AUTH_TOKEN,
        twilio_account_sid=ACCOUNT_SID,
        twilio_number=HOTLINE,
        outbound_daily_cap=MESSAGES,
        flows_dir=ROOT / "voice_flows",
    )


async def test_two_outbox_worker_processes_send_every_message_once(
    sender_settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """Two `rimay worker --once` processes drain one queue: every message reaches Twilio exactly once."""
    async with sessions_for(database_url) as sessions:
        for index in range(MESSAGES):
            await queue_sms(sessions, sender_settings, Clock(), f"mensaje {index}")
    env = {
        "RIMAY_DATABASE_URL": database_url,
        "RIMAY_DATA_DIR": str(tmp_path / "data"),
        "RIMAY_SECRET_KEY": SECRET_KEY,
        "RIMAY_CONTACT_KEY": CONTACT_KEY,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "RIMAY_TWILIO_NUMBER": HOTLINE,
        "RIMAY_OUTBOUND_DAILY_CAP": str(MESSAGES),
        "RIMAY_FLOWS_DIR": str(ROOT / "voice_flows"),
    }
    with stub_twilio(workers=2) as (url, stub):
        claimed = await asyncio.to_thread(drain_in_processes, url, env, ["a", "b"])
    assert sum(claimed) == MESSAGES
    assert all(claimed), f"both workers took part: {claimed}"
    bodies = Counter(form["Body"] for _, form in stub.received)
    assert bodies == Counter(f"mensaje {index}" for index in range(MESSAGES)), "each sent exactly once"
    assert Counter(name for name, _ in stub.received) == {"a": claimed[0], "b": claimed[1]}
    async with sessions_for(database_url) as sessions, sessions() as db:
        queue = (await db.execute(select(OutboxMessage))).scalars().all()
    assert {(row.status, row.attempts) for row in queue} == {("sent", 1)}
    assert len({row.provider_sid for row in queue}) == MESSAGES


async def test_a_redelivery_releases_the_session_row_before_it_is_answered(
    database_url: str, flows: dict[str, FlowDefinition]
) -> None:
    """A replay only reads its stored answer: the row lock is let go at once, so a storm of redeliveries
    does not queue each behind the others' whole requests (and past the webhook deadline)."""
    call_sid = "CA" + "5" * 32
    async with sessions_for(database_url) as sessions:
        async with sessions() as db:
            talk = ConversationService(db, flows, Pseudonymizer(SECRET_KEY.encode()))
            started = await talk.begin(Channel.VOICE, call_sid, CALLER, "hotline")
            assert isinstance(started, Turn)
            await talk.commit(started, "<Response>0</Response>")
            session_id = started.session.id
            first = await talk.advance(session_id, 1, call_sid, Digits("1"))
            assert isinstance(first, Turn)
            await talk.commit(first, "<Response>1</Response>")
        async with sessions() as db:
            talk = ConversationService(db, flows, Pseudonymizer(SECRET_KEY.encode()))
            again = await talk.advance(session_id, 1, call_sid, Digits("1"))
            assert again == Replay("<Response>1</Response>")
            # The request is still being answered (its database session is open): the row is free.
            with psycopg.connect(libpq(database_url)) as other:
                other.execute("SET lock_timeout = '200ms'")
                other.execute("SELECT id FROM sessions WHERE id = %s FOR UPDATE", (session_id,))
