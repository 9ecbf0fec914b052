"""SIGKILL the service mid-call, restart it on the same PostgreSQL: nothing acknowledged is lost or doubled.

Twilio does not retry a voice webhook by default: a call whose webhook got no answer ends, and the caller
rings again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from app.flows.model import FlowDefinition
from app.sessions.models import CallSession
from app.simulator import Call, TwilioSigner, parse_twiml
from tests.conftest import AUTH_TOKEN, CALLER
from tests.outbound import ACCOUNT_SID
from tests.test_survey import EXPECTED, LIKERT, answers, rows, runs
from tests.workers import Served, libpq

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("database_url", ["postgres"], indirect=True)]

TO_AGE = ["1", "2", "1", "1"]
"""Spanish, the survey, consent, gender: the next screen asks the age."""
AGE, COMMUNITY = "3", "2"
SKIPPED_COMMENT = ("comentario", "skipped")
SESSION_STEP_AFTER_AGE = 5
"""The call's step counter once the age is stored: start (0), four keys to the age question, the age."""


@dataclass
class Walk:
    """A call in progress: the last TwiML it was given, and how to send the next key."""

    phone: Call
    flows: dict[str, FlowDefinition]
    last: httpx.Response

    @property
    def action(self) -> str:
        """The action URL of the last TwiML: where the next webhook goes."""
        screen = parse_twiml(self.last.text, self.flows)
        action = screen.gather_action or screen.record_action
        assert action is not None, self.last.text
        return action

    def asks(self, node: str) -> bool:
        """The last TwiML speaks this node's (Spanish) prompt."""
        prompt = self.flows["hotline"].nodes[node].prompt["es"]
        return prompt in [verb.text for verb in parse_twiml(self.last.text, self.flows).prompts]

    async def press(self, *keys: str) -> httpx.Response:
        """Answer each screen in turn; the last answer."""
        for key in keys:
            screen = parse_twiml(self.last.text, self.flows)
            extra = self.phone.recorded(key) if screen.record_action else {"Digits": key}
            self.last = await self.phone.post(self.action, {**extra, "CallStatus": "in-progress"})
            assert self.last.status_code == 200, self.last.text
        return self.last


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[Served]:
    """One uvicorn worker on the test's PostgreSQL database, the way `rimay serve` runs it."""
    service = Served(tmp_path, database_url, extra_env={"TWILIO_ACCOUNT_SID": ACCOUNT_SID})
    service.start()
    try:
        yield service
    finally:
        service.stop()


async def call(served: Served, flows: dict[str, FlowDefinition], client: httpx.AsyncClient) -> Walk:
    """A new call from CALLER, answered by the service."""
    signer = TwilioSigner(AUTH_TOKEN, served.base_url)
    phone = Call(client=client, signer=signer, flows=flows, caller=CALLER, account_sid=ACCOUNT_SID)
    first = await phone.post("/twilio/voice", {"CallStatus": "ringing"})
    assert first.status_code == 200, first.text
    return Walk(phone, flows, first)


async def finish(walk: Walk, database_url: str) -> None:
    """Answer the remaining questions; every answer is stored once and the run completes."""
    await walk.press(*LIKERT, "*")
    assert walk.asks("survey_thanks")
    assert answers(database_url) == [*EXPECTED, SKIPPED_COMMENT]
    assert [run.status for run in runs(database_url)] == ["completed"]


async def test_killed_between_webhooks_the_call_goes_on_after_a_restart(
    served: Served, database_url: str, flows: dict[str, FlowDefinition]
) -> None:
    """The answers given before the kill stay once; the next webhook after the restart is the next step."""
    async with httpx.AsyncClient(base_url=served.base_url) as client:
        walk = await call(served, flows, client)
        await walk.press(*TO_AGE)
        age_action = walk.action
        acknowledged = await walk.press(AGE)
        assert walk.asks("q_community")
    served.kill()
    assert answers(database_url) == EXPECTED[:2]
    served.start()
    async with httpx.AsyncClient(base_url=served.base_url) as client:
        walk.phone.client = client
        # Twilio may redeliver the webhook it last got an answer to: the same TwiML, nothing stored twice.
        again = await walk.phone.post(age_action, {"Digits": AGE, "CallStatus": "in-progress"})
        assert again.text == acknowledged.text
        assert answers(database_url) == EXPECTED[:2]
        await walk.press(COMMUNITY)
        assert walk.asks("q_water")
        await finish(walk, database_url)
    [session] = rows(database_url, CallSession)
    assert session.step == SESSION_STEP_AFTER_AGE + 1 + len(LIKERT) + 1


async def test_killed_with_an_answer_in_flight_only_that_answer_is_asked_again(
    served: Served, database_url: str, flows: dict[str, FlowDefinition]
) -> None:
    """Killed while a webhook waits on its session's lock: that answer was never committed, so a new
    call resumes at that very question, and the answers acknowledged before it are not asked again."""
    async with httpx.AsyncClient(base_url=served.base_url) as client:
        walk = await call(served, flows, client)
        await walk.press(*TO_AGE, AGE)
        session_id = walk.action.split("/sessions/")[1].split("/")[0]
        with _session_locked(database_url, session_id) as locked:
            in_flight = asyncio.create_task(walk.press(COMMUNITY))
            await _wait_for_lock_waiter(locked)
            # At once: a webhook still waiting after 1.5 s would be answered with the outage apology.
            served.kill()
            with pytest.raises(httpx.TransportError):
                await in_flight
        # The dead server's connections (the one that waited for the lock too) end with it.
        await _wait_until_alone(database_url)
    assert answers(database_url) == EXPECTED[:2], "the answer in flight was not committed"
    [session] = rows(database_url, CallSession)
    assert session.step == SESSION_STEP_AFTER_AGE
    served.start()
    async with httpx.AsyncClient(base_url=served.base_url) as client:
        walk.phone.client = client  # the lost call's status callback reaches the new server
        status = await walk.phone.post("/twilio/voice/status", {"CallStatus": "failed", "CallDuration": "40"})
        assert status.status_code == 204
        again = await call(served, flows, client)
        assert again.asks("survey_offer"), "the caller rings back and is offered her unfinished survey"
        await again.press("1")
        assert again.asks("q_community"), "asked only for the answer that was lost"
        await again.press(COMMUNITY)
        assert again.asks("q_water")
        await finish(again, database_url)


class _Locked:
    """A connection holding one session row's lock, which can see who waits for it."""

    def __init__(self, connection: psycopg.Connection[tuple[object, ...]]) -> None:
        self.connection = connection

    def waiters(self) -> int:
        """Other backends of this database waiting on a lock."""
        row = self.connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        ).fetchone()
        assert row is not None
        return int(str(row[0]))


@contextmanager
def _session_locked(database_url: str, session_id: str) -> Iterator[_Locked]:
    """Hold the session row's FOR UPDATE lock (as a concurrent step would) until the block ends."""
    with psycopg.connect(libpq(database_url)) as connection:
        connection.execute("SELECT id FROM sessions WHERE id = %s FOR UPDATE", (session_id,))
        try:
            yield _Locked(connection)
        finally:
            connection.rollback()


async def _wait_for_lock_waiter(locked: _Locked) -> None:
    """Until the server's transaction for the webhook is blocked on the row lock (10 s at most)."""
    deadline = time.monotonic() + 10
    while locked.waiters() == 0:
        assert time.monotonic() < deadline, "the webhook never reached the session's lock"
        await asyncio.sleep(0.01)


async def _wait_until_alone(database_url: str) -> None:
    """Until no other connection to the database remains (10 s at most)."""
    deadline = time.monotonic() + 10
    with psycopg.connect(libpq(database_url), autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            assert time.monotonic() < deadline, "the killed server's connections outlived it"
            await asyncio.sleep(0.05)
