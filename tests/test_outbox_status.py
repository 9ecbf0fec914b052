"""`POST /twilio/sms/status`: signed delivery reports move a sent message forward, idempotently."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update

from app.outbox.models import OutboxMessage
from app.outbox.service import Outbox
from app.settings import Settings
from app.simulator import TwilioSigner
from tests.conftest import count_rows
from tests.outbound import NUMBER, Sessions
from tests.test_outbox_service import add_caller, all_rows, hits
from tests.test_sms_endpoints import FORGERIES, forged

SID = "SM" + "a" * 32
PATH = "/twilio/sms/status"


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
    """A delivery report as Twilio posts it (numbers included), correctly signed."""
    params = {"AccountSid": "AC" + "1" * 32, "To": NUMBER, "From": "+15005550006", **extra}
    if sid is not None:
        params["MessageSid"] = params["SmsSid"] = sid
    if status is not None:
        params["MessageStatus"] = params["SmsStatus"] = status
    return await client.post(PATH, data=params, headers=signer.headers(signer.public(PATH), params))


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
    params = {"AccountSid": "AC" + "1" * 32, "To": NUMBER, "From": "+15005550006"}
    params |= {"MessageSid": SID, "SmsSid": SID, "MessageStatus": "delivered", "SmsStatus": "delivered"}
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
