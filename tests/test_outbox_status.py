"""`POST /twilio/sms/status`: signed delivery reports move a sent message forward, idempotently."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update

from app.outbox.models import OutboxMessage
from app.outbox.service import Outbox
from app.settings import Settings
from app.simulator import TwilioSigner
from tests.conftest import count_rows
from tests.outbound import CALLS_URL, MESSAGES_URL, NUMBER, Sessions
from tests.outbox_support import (
    PATH,
    Outboxes,
    box,
    form,
    listing,
    post_signed,
    report_fields,
    report_to_row,
)
from tests.test_outbox_service import add_caller, all_rows, hits
from tests.test_sms_endpoints import FORGERIES, forged

SID = "SM" + "a" * 32
__all__ = ["box"]  # the fixture shared from outbox_support


@pytest.fixture
async def sent(sessions: Sessions, settings: Settings) -> int:
    """A message the worker handed to Twilio as SID; its row id."""
    caller_id = await add_caller(sessions, settings)
    async with sessions() as db, db.begin():
        message = await Outbox(db, settings).enqueue_sms(caller_id, "Hola")
        assert message is not None
        await db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id)
            .values(status="sent", provider_sid=SID)
        )
        return message.id


async def report(
    client: httpx.AsyncClient, signer: TwilioSigner, status: str | None, sid: str | None = SID, **extra: str
) -> httpx.Response:
    """A delivery report as Twilio posts it (numbers included) to the bare callback URL, correctly signed."""
    return await post_signed(client, signer, PATH, report_fields(status, sid, **extra))


async def status_of(sessions: Sessions, row_id: int) -> tuple[str, str | None]:
    """A row's status and last error."""
    row = next(row for row in await all_rows(sessions) if row.id == row_id)
    return row.status, row.last_error


async def test_delivered_is_stored_and_a_repeat_changes_nothing(
    client: httpx.AsyncClient, signer: TwilioSigner, sessions: Sessions, sent: int
) -> None:
    """delivered, then the same report again: 200 both times, same state."""
    for _ in range(2):
        response = await report(client, signer, "delivered")
        assert (response.status_code, response.json()) == (200, {"status": "delivered"})
        assert await status_of(sessions, sent) == ("delivered", None)


async def test_reports_never_go_backwards(
    client: httpx.AsyncClient, signer: TwilioSigner, sessions: Sessions, sent: int
) -> None:
    """A late `sent` or `queued` after `undelivered` leaves the row undelivered, with Twilio's error code."""
    response = await report(client, signer, "undelivered", ErrorCode="30003")
    assert response.json() == {"status": "undelivered"}
    for late in ("sent", "queued", "delivered", "failed"):
        response = await report(client, signer, late)
        assert (response.status_code, response.json()) == (200, {"status": "undelivered"})
    assert await status_of(sessions, sent) == ("undelivered", "twilio error 30003")


async def test_sent_then_failed_moves_forward(
    client: httpx.AsyncClient, signer: TwilioSigner, sessions: Sessions, sent: int
) -> None:
    """Intermediate statuses are acknowledged; a forged error code is not stored."""
    assert (await report(client, signer, "queued")).json() == {"status": "sent"}
    assert (await report(client, signer, "sent")).json() == {"status": "sent"}
    assert (await report(client, signer, "failed", ErrorCode=NUMBER)).json() == {"status": "failed"}
    assert await status_of(sessions, sent) == ("failed", None)


async def test_unknown_message_is_404(client: httpx.AsyncClient, signer: TwilioSigner, sent: int) -> None:
    """A MessageSid we never sent (e.g. an inbound message) is named as such."""
    response = await report(client, signer, "delivered", sid="SM" + "b" * 32)
    assert (response.status_code, response.json()) == (404, {"error": "message_not_found"})


@pytest.mark.parametrize(
    ("status", "sid"),
    [(None, SID), ("delivered", None), ("exploded", SID), ("delivered", "not-a-sid")],
    ids=["no-status", "no-sid", "bad-status", "bad-sid"],
)
async def test_missing_or_malformed_fields_are_400(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    sessions: Sessions,
    sent: int,
    status: str | None,
    sid: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """400 JSON, nothing changed, and the log names fields, never the numbers posted."""
    response = await report(client, signer, status, sid)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_webhook"})
    assert await status_of(sessions, sent) == ("sent", None)
    assert hits(caplog.text.encode()) == []


async def test_unsigned_report_is_refused(client: httpx.AsyncClient, sessions: Sessions, sent: int) -> None:
    """403 and nothing changes."""
    response = await client.post(PATH, data={"MessageSid": SID, "MessageStatus": "delivered"})
    assert response.status_code == 403
    assert await status_of(sessions, sent) == ("sent", None)


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_forged_report_is_refused(
    client: httpx.AsyncClient, sessions: Sessions, database_url: str, sent: int, forgery: str
) -> None:
    """A wrong value, another token, another URL or altered fields: 403, the row and tables unchanged."""
    params = report_fields("delivered", SID)
    posted, headers = forged(forgery, PATH, params)
    response = await client.post(PATH, data=posted, headers=headers)
    assert response.status_code == 403
    assert await status_of(sessions, sent) == ("sent", None)
    assert (count_rows(database_url, "outbox"), count_rows(database_url, "webhook_deliveries")) == (1, 0)


async def test_internal_error_is_503_not_500(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    sent: int,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected failure gives a logged 503 with a JSON body, never a bare 500."""

    async def broken(*_: object, **__: object) -> str:
        raise RuntimeError("database went away")

    monkeypatch.setattr(Outbox, "record_delivery", broken)
    response = await report(client, signer, "delivered")
    assert (response.status_code, response.json()) == (503, {"error": "temporarily_unavailable"})
    assert "webhook /twilio/sms/status failed" in caplog.text
    assert hits(caplog.text.encode()) == []


async def test_report_naming_no_row_is_404(
    box: Outboxes, client: httpx.AsyncClient, signer: TwilioSigner
) -> None:
    """An unknown sid naming a row id that does not exist: not ours, 404, nothing changed."""
    row = await box.sent_row()
    answer = await report_to_row(client, signer, "SM" + "b" * 32, "delivered", row.id + 1000)
    assert (answer.status_code, answer.json()) == (404, {"error": "message_not_found"})
    assert (await box.one_row()).status == "sent"


@pytest.mark.parametrize("case", ["row-holds-another-sid", "sid-on-another-row", "row-is-a-call"])
async def test_report_that_contradicts_the_rows_is_409_and_changes_nothing(
    box: Outboxes,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    """The URL's row holds another message (or is a call), or the sid is another row's: 409, logged."""
    box.twilio.post(CALLS_URL).mock(side_effect=box.fake.create)
    row = await box.sent_row()
    call = await box.queue_call_back()
    sid, outbox = {
        "row-holds-another-sid": ("SM" + "c" * 32, row.id),
        "sid-on-another-row": (row.provider_sid, call.id),
        "row-is-a-call": ("SM" + "c" * 32, call.id),
    }[case]
    before = [(r.id, r.status, r.provider_sid) for r in await box.all_rows()]
    answer = await report_to_row(client, signer, str(sid), "delivered", outbox)
    assert (answer.status_code, answer.json()) == (409, {"error": "outbox_mismatch"})
    assert [(r.id, r.status, r.provider_sid) for r in await box.all_rows()] == before
    assert "nothing changed" in caplog.text
    assert hits(caplog.text.encode()) == []


@pytest.mark.parametrize("outbox", ["abc", "0", "-1", "1.5", "+51964555123", "9" * 19, "", "1&outbox=2"])
async def test_malformed_outbox_id_is_400(
    box: Outboxes,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    caplog: pytest.LogCaptureFixture,
    outbox: str,
) -> None:
    """Not one positive id of at most 18 digits: 400 naming the field, never echoing it; nothing changed."""
    row = await box.sent_row()
    answer = await report_to_row(client, signer, str(row.provider_sid), "delivered", outbox)
    assert (answer.status_code, answer.json()) == (400, {"error": "invalid_webhook"})
    assert (await box.one_row()).status == "sent"
    assert hits(caplog.text.encode()) == []


async def test_the_signature_covers_the_outbox_id(
    box: Outboxes, client: httpx.AsyncClient, signer: TwilioSigner
) -> None:
    """A report signed for one row's URL and posted to another's (or without the id) is refused: 403."""
    box.twilio.post(MESSAGES_URL).mock(side_effect=box.fake.accepted_then_timed_out)
    await box.queue_sms()
    assert await box.worker.run_once() == 1
    row = await box.one_row()
    params = {"MessageSid": box.fake.sids()[0], "MessageStatus": "delivered"}
    signed = signer.headers(signer.public(f"{PATH}?outbox={row.id + 1}"), params)
    for path in (f"{PATH}?outbox={row.id}", PATH):
        assert (await client.post(path, data=params, headers=signed)).status_code == 403
    row = await box.one_row()
    assert (row.status, row.provider_sid) == ("pending", None)


@pytest.mark.parametrize("reported", ["delivered", "failed"])
async def test_report_before_the_sid_is_recorded_is_kept(
    box: Outboxes, client: httpx.AsyncClient, signer: TwilioSigner, reported: str
) -> None:
    """Twilio reports while the worker waits for its answer; the worker's late success undoes nothing."""
    answers: list[httpx.Response] = []

    async def reports_first(request: httpx.Request) -> httpx.Response:
        created = box.fake.create(request)
        outbox = parse_qs(urlsplit(form(request)["StatusCallback"]).query)["outbox"][0]
        answers.append(await report_to_row(client, signer, created.json()["sid"], reported, outbox))
        return created

    box.twilio.post(MESSAGES_URL).mock(side_effect=reports_first)
    await box.queue_sms()
    assert await box.worker.run_once() == 1
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"status": reported})]
    row = await box.one_row()
    assert (row.status, row.provider_sid, row.last_error) == (reported, box.fake.sids()[0], None)
    assert row.sent_at is not None


async def test_report_for_a_timed_out_attempt_settles_the_row_before_any_retry(
    box: Outboxes, client: httpx.AsyncClient, signer: TwilioSigner
) -> None:
    """The answer was lost, the report was not: the row is sent and never claimed again, Twilio not asked."""
    fake = box.fake
    posts = box.twilio.post(MESSAGES_URL).mock(side_effect=fake.accepted_then_timed_out)
    lookups = box.twilio.get(MESSAGES_URL).mock(side_effect=fake.listed)
    await box.queue_sms()
    assert await box.worker.run_once() == 1
    row = await box.one_row()
    assert row.status == "pending"
    answer = await report_to_row(client, signer, fake.sids()[0], "sent", row.id)
    assert (answer.status_code, answer.json()) == (200, {"status": "sent"})
    box.clock.advance(hours=1)
    assert await box.worker.run_once() == 0
    row = await box.one_row()
    assert (row.status, row.provider_sid, row.next_attempt_at) == ("sent", fake.sids()[0], None)
    assert (posts.call_count, lookups.call_count) == (1, 0)


async def test_report_during_the_lookup_stops_the_resend(
    box: Outboxes, client: httpx.AsyncClient, signer: TwilioSigner
) -> None:
    """Twilio's list lags behind while its report arrives: the recorded sid wins, nothing is resent."""

    async def lagging(request: httpx.Request) -> httpx.Response:
        row = await box.one_row()
        await report_to_row(client, signer, box.fake.sids()[0], "delivered", row.id)
        return listing(MESSAGES_URL)

    posts = box.twilio.post(MESSAGES_URL).mock(side_effect=box.fake.accepted_then_timed_out)
    box.twilio.get(MESSAGES_URL).mock(side_effect=lagging)
    await box.queue_sms()
    assert await box.worker.run_once() == 1
    box.clock.advance(hours=1)
    assert await box.worker.run_once() == 1
    row = await box.one_row()
    assert (row.status, row.provider_sid, posts.call_count) == ("delivered", box.fake.sids()[0], 1)
