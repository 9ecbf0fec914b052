"""A call-back's own webhooks name its outbox row: a call placed while the worker's answer was lost is
recorded by the call itself (answered or not), so it is never placed twice, even when Twilio's list lags."""

from __future__ import annotations

import logging
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from sqlalchemy import select

from app.contacts.models import Contact
from app.flows.model import FlowDefinition
from app.outbox.models import OutboxMessage
from app.simulator import Call, TwilioSigner, parse_twiml
from tests.conftest import count_rows
from tests.outbound import CALLS_URL, HOTLINE, NUMBER
from tests.outbox_support import Outboxes, box, form, listing, outbound, post_signed
from tests.test_outbox_service import hits

VOICE, STATUS = "/twilio/voice", "/twilio/voice/status"
__all__ = ["box", "outbound"]  # fixtures shared from outbox_support


def call_back_fields(call_sid: str, **extra: str) -> dict[str, str]:
    """What Twilio posts for a call the hotline placed: the person called is To."""
    return {"CallSid": call_sid, "Direction": "outbound-api", "From": HOTLINE, "To": NUMBER, **extra}


async def both_webhooks(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    outbox: object,
    sid: str,
) -> tuple[httpx.Response, httpx.Response]:
    """The call's two webhooks naming ``outbox``, signed: the person answers, then the call ends."""
    phone = Call(client=client, signer=signer, flows=flows, caller=HOTLINE)
    answer = await phone.post(f"{VOICE}?outbox={outbox}", call_back_fields(sid))
    fields = call_back_fields(sid, CallStatus="completed")
    return answer, await post_signed(client, signer, f"{STATUS}?outbox={outbox}", fields)


async def lost_call_back(box: Outboxes) -> tuple[OutboxMessage, str, tuple[respx.Route, respx.Route]]:
    """A call-back Twilio placed while the worker's request timed out, and a call list that lags (empty)."""
    posts = box.twilio.post(CALLS_URL).mock(side_effect=box.fake.accepted_then_timed_out)
    lookups = box.twilio.get(CALLS_URL).mock(return_value=listing(CALLS_URL))
    await box.queue_call_back()
    assert await box.worker.run_once() == 1
    row = await box.one_row()
    assert (row.status, row.provider_sid) == ("pending", None)
    [placed] = box.fake.sids("calls")
    return row, placed, (posts, lookups)


async def contacts(box: Outboxes) -> list[Contact]:
    """Every stored contact."""
    async with box.sessions() as db:
        return list(await db.scalars(select(Contact)))


async def test_the_worker_names_the_row_in_both_of_the_calls_urls(box: Outboxes) -> None:
    posts = box.twilio.post(CALLS_URL).mock(side_effect=box.fake.create)
    row = await box.queue_call_back()
    assert await box.worker.run_once() == 1

    sent = form(posts.calls.last.request)
    for field, path in (("Url", VOICE), ("StatusCallback", STATUS)):
        url = urlsplit(sent[field])
        assert (url.path, parse_qs(url.query)) == (path, {"outbox": [str(row.id)]})


async def test_an_answered_call_back_whose_create_timed_out_is_recorded_by_its_webhook(
    box: Outboxes, client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition]
) -> None:
    """The person answers: the flow starts for her, the row records the call, the number is deleted, and
    the worker neither asks Twilio nor calls again."""
    row, placed, (posts, lookups) = await lost_call_back(box)
    assert await contacts(box), "kept while the call may have to be placed again"

    phone = Call(client=client, signer=signer, flows=flows, caller=HOTLINE)
    answer = await phone.post(f"{VOICE}?outbox={row.id}", call_back_fields(placed))
    assert parse_twiml(answer.text, flows).gather_action is not None

    recorded = await box.one_row()
    assert (recorded.status, recorded.provider_sid, recorded.next_attempt_at) == ("sent", placed, None)
    assert await contacts(box) == [], "placed: the call-back number is deleted"
    box.clock.advance(hours=1)
    assert await box.worker.run_once() == 0
    assert (posts.call_count, lookups.call_count) == (1, 0)


@pytest.mark.parametrize("status", ["no-answer", "busy", "completed"])
async def test_a_call_back_nobody_answered_is_recorded_by_its_status_callback(
    box: Outboxes, client: httpx.AsyncClient, signer: TwilioSigner, database_url: str, status: str
) -> None:
    """No voice webhook comes for a call nobody picks up; its status callback records it instead."""
    row, placed, (posts, lookups) = await lost_call_back(box)

    fields = call_back_fields(placed, CallStatus=status, CallDuration="0")
    answer = await post_signed(client, signer, f"{STATUS}?outbox={row.id}", fields)
    assert answer.status_code == 204
    again = await post_signed(client, signer, f"{STATUS}?outbox={row.id}", fields)
    assert again.status_code == 204

    recorded = await box.one_row()
    assert (recorded.status, recorded.provider_sid) == ("sent", placed)
    assert count_rows(database_url, "sessions") == 0
    assert await contacts(box) == []
    box.clock.advance(hours=1)
    assert await box.worker.run_once() == 0
    assert (posts.call_count, lookups.call_count) == (1, 0)


async def test_webhooks_of_a_call_back_the_worker_recorded_change_nothing(
    box: Outboxes,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    caplog: pytest.LogCaptureFixture,
) -> None:
    box.twilio.post(CALLS_URL).mock(side_effect=box.fake.create)
    row = await box.queue_call_back()
    assert await box.worker.run_once() == 1
    before = await box.one_row()
    [placed] = box.fake.sids("calls")

    answer, ended = await both_webhooks(client, signer, flows, row.id, placed)

    assert parse_twiml(answer.text, flows).gather_action is not None
    assert ended.status_code == 204
    after = await box.one_row()
    assert (after.status, after.provider_sid, after.updated_at) == ("sent", placed, before.updated_at)
    assert "names this row" not in caplog.text


@pytest.mark.parametrize("named", ["other call", "no such row", "an SMS row"])
async def test_a_webhook_naming_a_row_that_is_not_its_call_changes_nothing(
    box: Outboxes,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    caplog: pytest.LogCaptureFixture,
    named: str,
) -> None:
    """The call is answered as usual; the rows stay as they were and an operator is told which row."""
    box.twilio.post(CALLS_URL).mock(side_effect=box.fake.create)
    call_row = await box.queue_call_back()
    assert await box.worker.run_once() == 1
    sms_caller = await box.queue_sms()
    rows_before = [(r.id, r.status, r.provider_sid) for r in await box.all_rows()]
    sms_row = next(r for r in await box.all_rows() if r.caller_id == sms_caller)
    target = {"other call": call_row.id, "no such row": 999_999, "an SMS row": sms_row.id}[named]
    stranger = "CA" + uuid.uuid4().hex

    answer, ended = await both_webhooks(client, signer, flows, target, stranger)

    assert parse_twiml(answer.text, flows).gather_action is not None
    assert ended.status_code == 204
    assert [(r.id, r.status, r.provider_sid) for r in await box.all_rows()] == rows_before
    warning = f"outbox {target}: a call's webhook names this row, which holds another call or none"
    assert caplog.text.count(warning) == 2


@pytest.mark.parametrize("outbox", ["abc", "0", "-1", "1.5", NUMBER, "9" * 19, "", "1&outbox=2"])
async def test_a_malformed_row_id_is_ignored_by_the_call_and_refused_by_the_status_callback(
    box: Outboxes,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    caplog: pytest.LogCaptureFixture,
    outbox: str,
) -> None:
    """The person who picked up is still served; a status callback with a mangled URL is a 400."""
    caplog.set_level(logging.INFO)
    _, placed, _ = await lost_call_back(box)

    answer, ended = await both_webhooks(client, signer, flows, outbox, placed)

    assert parse_twiml(answer.text, flows).gather_action is not None
    assert ended.status_code == 400
    assert (await box.one_row()).provider_sid is None
    assert "call-back webhook with a malformed outbox id" in caplog.text
    assert hits(caplog.text.encode()) == []


async def test_the_signature_covers_the_row_id(
    box: Outboxes, client: httpx.AsyncClient, signer: TwilioSigner
) -> None:
    row, placed, _ = await lost_call_back(box)
    for path in (VOICE, STATUS):
        fields = call_back_fields(placed, CallStatus="completed")
        signed = signer.headers(signer.public(f"{path}?outbox={row.id + 1}"), fields)
        answer = await client.post(f"{path}?outbox={row.id}", data=fields, headers=signed)
        assert answer.status_code == 403
    assert (await box.one_row()).provider_sid is None
