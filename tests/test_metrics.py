"""`GET /metrics`: webhook latency and steps from real signed webhooks, the outbox from the database."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.callers.models import Caller
from app.outbox.models import OutboxMessage
from app.simulator import Call, TextPhone
from tests.conftest import CALLER
from tests.outbound import Sessions

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    """Every sample of `/metrics`, by name and labels."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_webhooks_are_timed_and_steps_counted(
    phone: Call, client: httpx.AsyncClient, signer: object
) -> None:
    """A call with two key presses and a text: latency by route template, steps by channel, no numbers."""
    before = await scrape(client)
    keys = iter(["1", "1"])
    async for _ in phone.screens(lambda _: next(keys, None)):
        pass
    await TextPhone(client=client, signer=phone.signer, sender=CALLER).text("hola")
    after = await scrape(client)
    step_route = "/twilio/voice/sessions/{session_id}/steps/{number}"
    assert value(after, "rimay_webhook_seconds_count", route="/twilio/voice", status="200") == 1 + value(
        before, "rimay_webhook_seconds_count", route="/twilio/voice", status="200"
    )
    assert (
        value(after, "rimay_webhook_seconds_count", route=step_route, status="200")
        - value(before, "rimay_webhook_seconds_count", route=step_route, status="200")
        == 2
    )
    voice = value(after, "rimay_webhook_steps_total", channel="voice") - value(
        before, "rimay_webhook_steps_total", channel="voice"
    )
    assert voice == 3, "the call's start and its two key presses"
    assert value(after, "rimay_webhook_steps_total", channel="sms") >= 1
    assert value(after, "rimay_webhook_seconds_count", route="/twilio/voice/status", status="204") >= 1
    text = (await client.get("/metrics")).text
    for secret in (CALLER, CALLER[1:], phone.call_sid):
        assert secret not in text


async def test_unsigned_webhooks_are_timed_under_their_refusal(client: httpx.AsyncClient) -> None:
    """A forged request counts under its 403, so an attack shows on the dashboard."""
    before = await scrape(client)
    assert (await client.post("/twilio/voice", data={"CallSid": "CA1"})).status_code == 403
    after = await scrape(client)
    key = {"route": "/twilio/voice", "status": "403"}
    assert (
        value(after, "rimay_webhook_seconds_count", **key)
        == value(before, "rimay_webhook_seconds_count", **key) + 1
    )


async def test_the_outbox_depth_and_failures_are_read_from_the_database(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    """Two queued messages and one failed one, as the database has them now."""
    async with sessions() as db:
        caller = Caller(pseudonym="m" * 64)
        db.add(caller)
        await db.flush()
        for status in ("pending", "pending", "failed"):
            db.add(OutboxMessage(kind="sms", purpose="news", caller_id=caller.id, body="x", status=status))
        await db.commit()
    samples = await scrape(client)
    assert value(samples, "rimay_outbox_messages", status="pending") == 2
    assert value(samples, "rimay_outbox_messages", status="failed") == 1
    assert value(samples, "rimay_outbox_messages", status="sent") == 0
