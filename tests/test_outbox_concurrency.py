"""Several workers at once, and the polling loop: every row is sent exactly once, stops are clean."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest
import respx

from app.outbox.repository import OutboxRepository
from app.outbox.twilio_http import client_factory
from app.outbox.worker import OutboxWorker
from app.settings import Settings
from tests.outbound import MESSAGES_URL, Clock, Sessions, outbound_settings, sessions_for
from tests.outbox_support import created, form, queue_sms
from tests.test_outbox_service import all_rows


@pytest.fixture
def outbound(settings: Settings) -> Settings:
    """Settings that can send, with a cap high enough for many rows."""
    return outbound_settings(settings, outbound_daily_cap=50)


@pytest.fixture
async def worker(sessions: Sessions, outbound: Settings, clock: Clock) -> AsyncIterator[OutboxWorker]:
    """One worker."""
    made = OutboxWorker(sessions, outbound, client_factory, clock=clock)
    yield made
    await made.aclose()


async def test_two_workers_send_every_message_exactly_once(
    twilio: respx.MockRouter, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """Concurrent workers on separate engines (SKIP LOCKED on PostgreSQL) never share a row."""
    route = twilio.post(MESSAGES_URL).mock(side_effect=created)
    for index in range(12):
        await queue_sms(sessions, outbound, clock, f"mensaje {index}")

    async def drain(worker: OutboxWorker) -> int:
        total = 0
        while claimed := await worker.run_once(batch=2):
            total += claimed
            await asyncio.sleep(0)
        return total

    async with (
        sessions_for(outbound.sqlalchemy_url) as first,
        sessions_for(outbound.sqlalchemy_url) as second,
    ):
        workers = [OutboxWorker(made, outbound, client_factory, clock=clock) for made in (first, second)]
        try:
            totals = await asyncio.gather(*(drain(worker) for worker in workers))
        finally:
            for worker in workers:
                await worker.aclose()
    # Which worker wins each claim is up to the scheduler (on SQLite one may take every row); what must
    # hold is that no row is sent twice. The next test proves SKIP LOCKED deterministically.
    assert sum(totals) == 12
    assert route.call_count == 12
    bodies = sorted(form(call.request)["Body"] for call in route.calls)
    assert bodies == sorted(f"mensaje {index}" for index in range(12))
    rows = await all_rows(sessions)
    assert {(row.status, row.attempts) for row in rows} == {("sent", 1)}
    assert len({row.provider_sid for row in rows}) == 12


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_claims_skip_rows_locked_by_another_worker(
    twilio: respx.MockRouter, worker: OutboxWorker, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """While one worker's claim is still open, another takes the remaining rows instead of waiting."""
    route = twilio.post(MESSAGES_URL).mock(side_effect=created)
    for index in range(4):
        await queue_sms(sessions, outbound, clock, f"mensaje {index}")
    async with sessions() as db, db.begin():
        held = await OutboxRepository(db).claim(clock.now, 2)
        assert await asyncio.wait_for(worker.run_once(batch=10), timeout=10) == 2
    assert route.call_count == 2
    sent = {form(call.request)["Body"] for call in route.calls}
    assert sent.isdisjoint({job.body for job in held})


async def test_run_forever_stops_on_sigterm_after_its_batch(
    twilio: respx.MockRouter, worker: OutboxWorker, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """SIGTERM ends the loop cleanly; what was due has been sent and the signal handler is removed."""
    route = twilio.post(MESSAGES_URL).mock(side_effect=created)
    await queue_sms(sessions, outbound, clock)
    task = asyncio.create_task(worker.run_forever(poll_interval=0.05))
    for _ in range(200):
        if route.call_count:
            break
        await asyncio.sleep(0.01)
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, timeout=5)
    assert route.call_count == 1
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    [row] = await all_rows(sessions)
    assert row.status == "sent"
