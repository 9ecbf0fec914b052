"""Missed-call call-back: the call is rejected (free), one call-back is placed, the number deleted."""

from __future__ import annotations

import asyncio
import random
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from fastapi import FastAPI
from sqlalchemy import select

from app.contacts.models import Contact
from app.db.base import utcnow
from app.flows.model import FlowDefinition
from app.outbox.models import MessageKind, OutboxMessage
from app.outbox.twilio_http import client_factory
from app.outbox.worker import OutboxWorker
from app.settings import Settings
from app.simulator import Call, TwilioSigner, parse_twiml
from tests.conftest import count_rows
from tests.outbound import CALLS_URL, HOTLINE, Sessions, outbound_settings

NUMBER = "+51964777888"


@pytest.fixture
def callback_settings(app: FastAPI, settings: Settings) -> Settings:
    """The running app switched to call-back mode, able to place calls."""
    changed = outbound_settings(settings, callback_mode=True, callback_delay_seconds=0)
    app.state.settings = changed
    return changed


def _call(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], number: str = NUMBER
) -> Call:
    return Call(client=client, signer=signer, flows=flows, caller=number)


async def _outbox(sessions: Sessions) -> list[OutboxMessage]:
    async with sessions() as db:
        return list(await db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_call_is_rejected_and_one_call_back_is_queued(
    callback_settings: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    sessions: Sessions,
    database_url: str,
) -> None:
    """<Reject> (free for the caller), one queued call, the number encrypted; redelivery changes nothing."""
    phone = _call(client, signer, flows)
    first = await phone.post("/twilio/voice", {})
    assert "<Reject" in first.text
    assert 'reason="busy"' in first.text
    again = await phone.post("/twilio/voice", {})
    assert again.text == first.text
    [queued] = await _outbox(sessions)
    assert queued.kind == MessageKind.CALL
    assert queued.call_flow == "hotline"
    assert count_rows(database_url, "contacts") == 1
    async with sessions() as db:
        contact = await db.scalar(select(Contact))
        assert contact is not None
        assert NUMBER[1:].encode() not in contact.ciphertext


async def test_the_same_missed_call_delivered_at_once_is_rejected_alike_and_queued_once(
    callback_settings: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    sessions: Sessions,
    database_url: str,
) -> None:
    """Twilio redelivers while the first delivery is still at work: every copy gets the same <Reject> and
    one call-back is queued (the caller's row, touched first, makes the copies wait for the first's commit;
    then they find its session and replay its answer)."""
    phone = _call(client, signer, flows)
    answers = await asyncio.gather(*(phone.post("/twilio/voice", {}) for _ in range(6)))

    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.text for answer in answers}) == 1
    assert "<Reject" in answers[0].text
    assert len(await _outbox(sessions)) == 1
    assert count_rows(database_url, "sessions") == 1
    assert count_rows(database_url, "contacts") == 1


async def test_second_missed_call_in_the_window_is_answered(
    callback_settings: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    sessions: Sessions,
) -> None:
    """One call-back per caller per window: a second call is answered normally instead."""
    assert "<Reject" in (await _call(client, signer, flows).post("/twilio/voice", {})).text
    second = await _call(client, signer, flows).post("/twilio/voice", {})
    assert "<Gather" in second.text
    assert len(await _outbox(sessions)) == 1


async def test_global_rate_limit_answers_instead(
    app: FastAPI,
    callback_settings: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    sessions: Sessions,
) -> None:
    """Past the per-minute rate, calls are answered, not rejected."""
    app.state.settings = callback_settings.model_copy(update={"callback_max_per_minute": 1})
    assert "<Reject" in (await _call(client, signer, flows, "+51964000001").post("/twilio/voice", {})).text
    assert "<Gather" in (await _call(client, signer, flows, "+51964000002").post("/twilio/voice", {})).text
    assert len(await _outbox(sessions)) == 1


async def test_worker_places_exactly_one_call_and_deletes_the_number(
    callback_settings: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    sessions: Sessions,
    database_url: str,
) -> None:
    """The worker calls the caller back into the same flow, once, then forgets the number."""
    await _call(client, signer, flows).post("/twilio/voice", {})
    worker = OutboxWorker(sessions, callback_settings, client_factory, clock=utcnow, rng=random.Random(1))
    try:
        with respx.mock(assert_all_called=True) as twilio:
            route = twilio.post(CALLS_URL).mock(
                return_value=httpx.Response(201, json={"sid": "CA" + "e" * 32, "status": "queued"})
            )
            assert await worker.run_once() == 1
            assert await worker.run_once() == 0
        assert route.call_count == 1
        sent = {k: v[0] for k, v in parse_qs(route.calls.last.request.content.decode()).items()}
        assert sent["To"] == NUMBER
        assert sent["From"] == HOTLINE
        [row] = await _outbox(sessions)
        assert sent["Url"] == f"{callback_settings.public_base_url}/twilio/voice?outbox={row.id}"
    finally:
        await worker.aclose()
    assert count_rows(database_url, "contacts") == 0


async def test_call_back_runs_the_flow_for_the_called_number(
    callback_settings: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    database_url: str,
) -> None:
    """Twilio's webhook for the call-back (outbound-api) starts the flow for the person called."""
    missed = _call(client, signer, flows)
    await missed.post("/twilio/voice", {})
    callback = Call(client=client, signer=signer, flows=flows, caller=HOTLINE)
    answer = await callback.post("/twilio/voice", {"Direction": "outbound-api", "To": NUMBER})
    screen = parse_twiml(answer.text, flows)
    assert screen.gather_action is not None
    assert count_rows(database_url, "callers") == 1, "the hotline's own number must not become a caller"


async def test_callback_mode_off_answers_normally(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """By default calls are answered and nothing is queued or stored about the number."""
    answer = await _call(client, signer, flows).post("/twilio/voice", {})
    assert "<Gather" in answer.text
    assert count_rows(database_url, "outbox") == 0
    assert count_rows(database_url, "contacts") == 0


@pytest.mark.parametrize("withheld", ["anonymous", "+266696687", "Restricted", ""])
async def test_withheld_caller_id_is_answered_and_nothing_is_queued(
    callback_settings: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    database_url: str,
    withheld: str,
) -> None:
    """No number to call back: the call is answered as usual (not rejected), nothing queued or stored."""
    answer = await _call(client, signer, flows, withheld).post("/twilio/voice", {})
    assert answer.status_code == 200
    assert "<Reject" not in answer.text
    assert parse_twiml(answer.text, flows).gather_action is not None
    assert count_rows(database_url, "outbox") == 0
    assert count_rows(database_url, "contacts") == 0
    assert count_rows(database_url, "callers") == 0, "a withheld id is nobody: no pseudonym is made for it"
    assert count_rows(database_url, "sessions") == 1


async def test_opted_out_caller_is_answered_not_called_back(
    callback_settings: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    sessions: Sessions,
    database_url: str,
) -> None:
    """After ALTO nothing is sent to the number, call-backs included: the call is answered instead."""
    from app.simulator import TextPhone

    await TextPhone(client=client, signer=signer, sender=NUMBER).text("ALTO")
    answer = await _call(client, signer, flows).post("/twilio/voice", {})
    assert "<Gather" in answer.text
    assert await _outbox(sessions) == []
    assert count_rows(database_url, "contacts") == 0
