"""Admission control: a few webhooks worked on at once per worker, the rest queued briefly or turned away."""

from __future__ import annotations

import asyncio
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from pydantic import ValidationError

from app.main import create_app
from app.settings import Settings
from app.simulator import TwilioSigner
from app.webhooks.admission import Admission
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
NEW_CALL = {"CallSid": "CA" + "1" * 32, "From": "+51987000111", "To": "+15005550006"}


def turned_away(reason: str) -> float:
    """The process's count of webhooks turned away for this reason."""
    return REGISTRY.get_sample_value("rimay_webhooks_turned_away_total", {"reason": reason}) or 0.0


@dataclass
class Visits:
    """Webhooks taking turns: what each got, and the slots held until told to let go."""

    admission: Admission
    held: list[asyncio.Event] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def arrive(self, name: str) -> asyncio.Task[None]:
        """A webhook arrives: it takes a turn, notes whether it got in, and holds its slot."""
        return asyncio.create_task(self._enter(name))

    async def _enter(self, name: str) -> None:
        async with self.admission.turn() as admitted:
            self.log.append(f"{name}:{'in' if admitted else 'away'}")
            if admitted:
                done = asyncio.Event()
                self.held.append(done)
                await done.wait()


async def one_slot_taken(wait_seconds: float) -> tuple[Visits, asyncio.Task[None]]:
    """One slot, taken by webhook "a"."""
    visits = Visits(Admission(slots=1, wait_seconds=wait_seconds))
    first = visits.arrive("a")
    await asyncio.sleep(0.02)
    return visits, first


async def enter_and_leave(admission: Admission) -> bool:
    """Take a turn and give it back at once; whether it was admitted."""
    async with admission.turn() as admitted:
        return admitted


async def test_free_slots_admit_at_once_and_waiters_go_in_order() -> None:
    """Two slots: two webhooks start at once, the third and fourth wait and go in arrival order."""
    visits = Visits(Admission(slots=2, wait_seconds=5))
    tasks = [visits.arrive(name) for name in "abcd"]
    await asyncio.sleep(0.05)
    assert visits.log == ["a:in", "b:in"]
    visits.held[0].set()
    await asyncio.sleep(0.05)
    assert visits.log == ["a:in", "b:in", "c:in"]
    visits.held[1].set()
    await asyncio.sleep(0.05)
    assert visits.log == ["a:in", "b:in", "c:in", "d:in"]
    for event in visits.held:
        event.set()
    await asyncio.gather(*tasks)


async def test_waiting_past_the_queue_limit_is_turned_away_and_loses_no_slot() -> None:
    """A webhook that waits longer than allowed is turned away (busy); the slot count stays whole."""
    before = turned_away("busy")
    visits, first = await one_slot_taken(wait_seconds=0.1)
    started = time.monotonic()
    await visits.arrive("b")
    assert 0.09 <= time.monotonic() - started < 1.0
    assert visits.log == ["a:in", "b:away"]
    assert turned_away("busy") == before + 1
    visits.held[0].set()
    await first
    await asyncio.wait_for(enter_and_leave(visits.admission), timeout=0.1)  # the slot is free again


async def test_database_down_turns_waiters_away_at_once_and_a_free_slot_probes() -> None:
    """While the database is down, waiting is pointless: waiters are answered at once; a free slot still
    lets a webhook try (that is how the service notices the database is back)."""
    before = turned_away("database")
    visits, first = await one_slot_taken(wait_seconds=10)
    admission = visits.admission
    waiter = visits.arrive("b")
    await asyncio.sleep(0.02)
    assert visits.log == ["a:in"]
    admission.report(database_down=True)
    await asyncio.wait_for(waiter, timeout=0.5)
    assert visits.log == ["a:in", "b:away"]
    assert not await enter_and_leave(admission)  # arrives while the slot is taken: away at once
    assert turned_away("database") == before + 2
    visits.held[0].set()
    await first
    assert await enter_and_leave(admission)  # a free slot: admitted, to find out
    admission.report(database_down=False)
    assert not admission.database_down


async def test_one_slow_webhook_among_good_ones_is_not_an_outage() -> None:
    """With several slots, the database counts as down only after three failures in a row."""
    admission = Admission(slots=4, wait_seconds=5)
    for outcome in (True, True, False, True, True, False):
        admission.report(database_down=outcome)
        assert not admission.database_down
    for _ in range(2):
        admission.report(database_down=True)
        assert not admission.database_down
    admission.report(database_down=True)
    assert admission.database_down  # the third in a row
    admission.report(database_down=False)
    assert not admission.database_down


async def test_slots_survive_a_storm_of_timeouts_and_releases() -> None:
    """Waiters giving up while slots are being released never lose or double a slot."""
    admission = Admission(slots=3, wait_seconds=0.005)
    rng = random.Random(7)
    inside = 0
    most = 0

    async def visit() -> None:
        nonlocal inside, most
        async with admission.turn() as admitted:
            if admitted:
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(rng.choice((0, 0.001, 0.004, 0.006)))
                inside -= 1

    for _ in range(20):
        await asyncio.gather(*(visit() for _ in range(30)))
    assert most == 3
    entered = [asyncio.create_task(enter_and_leave(admission)) for _ in range(3)]
    assert all(await asyncio.gather(*entered))
    assert admission._slots._value == 3


async def test_cancelled_waiters_never_keep_or_lose_a_slot() -> None:
    """Requests cancelled while they wait (a server stopping), some just as a slot frees up for them:
    the slot goes to the one left waiting, and at the end every slot is usable."""
    visits = Visits(Admission(slots=2, wait_seconds=5))
    tasks = [visits.arrive(name) for name in "ab"]
    await asyncio.sleep(0.01)
    rng = random.Random(3)
    for round_ in range(30):
        waiters = [visits.arrive(f"w{round_}-{i}") for i in range(4)]
        tasks += waiters
        await asyncio.sleep(0)
        visits.held.pop(0).set()
        await asyncio.sleep(0)  # the holder lets go: the first waiter is granted the slot, not yet running
        cancelled = rng.sample(waiters, k=3)  # often the first waiter among them
        for waiter in cancelled:
            waiter.cancel()
        await asyncio.gather(*cancelled, return_exceptions=True)
        await asyncio.sleep(0.001)
        assert len(visits.held) == 2, round_  # the one left waiting got the free slot
    for event in visits.held:
        event.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert visits.admission._slots._value == 2


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with one slot and no queue, its lifespan entered (that is where admission is made)."""
    app = create_app(settings.model_copy(update={"webhook_concurrency": 1, "webhook_queue_seconds": 0}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_BASE_URL) as http:
            yield app, http


async def post(http: httpx.AsyncClient, path: str, params: dict[str, str]) -> httpx.Response:
    """A webhook signed like Twilio's."""
    signer = TwilioSigner(AUTH_TOKEN, PUBLIC_BASE_URL)
    return await http.post(path, data=params, headers=signer.headers(signer.public(path), params))


def verbs(response: httpx.Response) -> list[str]:
    """The TwiML's top-level verbs."""
    return [verb.tag for verb in ET.fromstring(response.text)]  # noqa: S314 - our own server's TwiML


@SQLITE
async def test_a_busy_worker_answers_the_apology_not_silence(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """Every slot busy and no queue: the shipped apology and a hang-up at once; Twilio's fallback URL and
    status callbacks are never queued; with the slot free the same call gets the menu."""
    app, http = served
    admission: Admission = app.state.admission
    before = turned_away("busy")
    async with admission.turn() as admitted:
        assert admitted
        response = await post(http, "/twilio/voice", NEW_CALL)
        assert response.status_code == 200
        assert verbs(response) == ["Play", "Play", "Hangup"]
        assert "/system/outage.mp3" in response.text
        fallback = await post(http, "/twilio/voice/fallback", {**NEW_CALL, "ErrorCode": "11200"})
        assert fallback.status_code == 200
        assert verbs(fallback)[-1] == "Hangup"
    assert turned_away("busy") == before + 1
    assert not admission.database_down  # being busy is not an outage
    response = await post(http, "/twilio/voice", NEW_CALL)
    assert "Gather" in verbs(response)
    assert "outage" not in response.text
    async with admission.turn():
        # A status callback is never turned away: no caller waits on it, and how the call ended would be lost.
        ended = await post(http, "/twilio/voice/status", {**NEW_CALL, "CallStatus": "completed"})
        assert ended.status_code == 204
    assert turned_away("busy") == before + 1


@SQLITE
async def test_a_queued_webhook_is_answered_when_its_turn_comes(settings: Settings) -> None:
    """One slot, a 2 s queue: a webhook that arrives while the slot is taken waits and gets the menu."""
    app = create_app(settings.model_copy(update={"webhook_concurrency": 1, "webhook_queue_seconds": 2}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_BASE_URL) as http:
            admission: Admission = app.state.admission
            async with admission.turn():
                waiting = asyncio.create_task(post(http, "/twilio/voice", NEW_CALL))
                await asyncio.sleep(0.3)
                assert not waiting.done()
            response = await asyncio.wait_for(waiting, timeout=5)
    assert "Gather" in verbs(response)


@SQLITE
def test_queue_and_deadline_must_fit_in_twilio_timeout(settings: Settings) -> None:
    """A queue wait plus deadline past Twilio's 15 s is refused at start, saying which settings."""
    fields = settings.model_dump() | {"webhook_queue_seconds": 12, "webhook_deadline_seconds": 3}
    with pytest.raises(ValidationError, match="RIMAY_WEBHOOK_QUEUE_SECONDS"):
        Settings(**fields)


@pytest.mark.parametrize(
    ("database_url", "given", "slots"),
    [
        (None, None, 2),  # the embedded SQLite default
        ("sqlite:///rimay.sqlite3", None, 2),
        ("postgresql://rimay@db.internal/rimay", None, 8),
        ("sqlite:///rimay.sqlite3", 5, 5),
        ("postgresql://rimay@db.internal/rimay", 1, 1),
    ],
)
def test_slots_default_to_sqlites_single_writer_unless_set(
    settings: Settings, database_url: str | None, given: int | None, slots: int
) -> None:
    """SQLite writes one transaction at a time: more slots only make webhooks wait for its lock."""
    fields = settings.model_dump() | {"database_url": database_url, "webhook_concurrency": given}
    assert Settings(**fields).webhook_slots == slots


@pytest.mark.parametrize("given", ["0", "-1", "1001", "eight", "2.5"])
def test_bad_concurrency_is_refused_at_start(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv("RIMAY_WEBHOOK_CONCURRENCY", given)
    with pytest.raises(ValidationError, match="webhook_concurrency"):
        Settings(data_dir=settings.data_dir)


async def test_the_served_app_takes_its_slots_from_the_database(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        admission: Admission = app.state.admission
        expected = 2 if settings.sqlalchemy_url.startswith("sqlite") else 8
        assert admission._slots._value == expected
    await app.state.engine.dispose()
