"""The rollups are kept up to date by real webhooks: counted once, in the session's final group, in time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import delete, select, update

from app.callers.models import Caller
from app.db.engine import make_sync_engine
from app.flows.model import FlowDefinition
from app.simulator import Call, Screen, TextPhone, TwilioSigner
from app.stats import rollup
from app.stats.models import StatsCount, StatsMember
from app.stats.rebuild import rebuild
from tests.conftest import CALLER
from tests.outbound import sessions_for

LIBRARY_THEN_SURVEY = ["1", "1", "1", "2", "9", "2", "1", "1", "3", "2"]
"""Spanish; library, first category: eia_1, then eia_2; main menu; survey: consent, mujer, 30-44, place."""


def counts(database_url: str, grain: str = "month") -> Counter[tuple[str, ...]]:
    """Counter values by (metric, subject, detail, service, gender, channel), zeros left out."""
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(StatsCount).where(StatsCount.grain == grain)).all()
    finally:
        engine.dispose()
    totals: Counter[tuple[str, ...]] = Counter()
    for row in rows:
        totals[(row.metric, row.subject, row.detail, row.service, row.gender, row.channel)] += row.value
    return Counter({key: value for key, value in totals.items() if value})


def metric(totals: Counter[tuple[str, ...]], name: str, **where: str) -> int:
    """The sum of one metric over the rows matching ``where`` (by field name)."""
    fields = ("metric", "subject", "detail", "service", "gender", "channel")
    return sum(
        value
        for key, value in totals.items()
        if key[0] == name and all(key[fields.index(field)] == wanted for field, wanted in where.items())
    )


class Clock:
    """The rollups' clock, moved by the test (message timing is judged from it)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Patch the clock the rollups and call endings read."""
    moved = Clock()
    monkeypatch.setattr(rollup, "utcnow", moved)
    monkeypatch.setattr("app.sessions.service.utcnow", moved)
    return moved


def scripted(
    keys: list[str], waits: dict[int, float], clock: Clock, linger: float
) -> Callable[[Screen], str | None]:
    """Press ``keys`` in turn, ``waits[i]`` seconds before key ``i``; ``linger`` seconds before hanging up."""
    script: Iterator[tuple[int, str]] = iter(enumerate(keys))

    def press(_: Screen) -> str | None:
        index, key = next(script, (-1, ""))
        if index < 0:
            clock.now += timedelta(seconds=linger)
            return None
        clock.now += timedelta(seconds=waits.get(index, 1))
        return key

    return press


@dataclass
class Line:
    """The hotline as callers reach it, with the rollups' clock in the test's hands."""

    client: httpx.AsyncClient
    signer: TwilioSigner
    flows: dict[str, FlowDefinition]
    database_url: str
    clock: Clock

    def phone(self, caller: str = CALLER) -> Call:
        """A phone calling the hotline."""
        return Call(client=self.client, signer=self.signer, flows=self.flows, caller=caller)

    async def call(
        self,
        keys: list[str],
        caller: str = CALLER,
        waits: dict[int, float] | None = None,
        linger: float = 1,
    ) -> None:
        """Walk a call with the given keys and waits, then hang up."""
        async for _ in self.phone(caller).screens(scripted(keys, waits or {}, self.clock, linger)):
            pass

    async def text(self, bodies: list[str], sender: str = CALLER) -> None:
        """Text the hotline."""
        phone = TextPhone(client=self.client, signer=self.signer, sender=sender)
        for body in bodies:
            await phone.text(body)

    def counts(self, grain: str = "month") -> Counter[tuple[str, ...]]:
        """The counters now."""
        return counts(self.database_url, grain)


@pytest.fixture
def line(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    database_url: str,
    clock: Clock,
) -> Line:
    """Callers, the hotline and its counters."""
    return Line(client, signer, flows, database_url, clock)


async def test_a_call_is_counted_once_under_its_final_demographics(line: Line) -> None:
    """She listens before saying she is a woman: her session, participation and plays all move to mujer."""
    await line.call(LIBRARY_THEN_SURVEY)
    totals = line.counts()
    assert metric(totals, "sessions", service="") == 1
    assert metric(totals, "sessions", service="", gender="mujer", channel="voice") == 1
    assert metric(totals, "participants", service="", gender="mujer") == 1
    assert metric(totals, "new", service="", gender="mujer") == 1
    assert metric(totals, "returning") == 0
    assert {key[1] for key in totals if key[0] == "plays"} == {"eia_1", "eia_2"}
    assert metric(totals, "plays", gender="mujer", service="library") == 2
    assert metric(totals, "sessions", service="library", gender="mujer") == 1
    assert metric(totals, "sessions", service="survey", gender="mujer") == 1
    assert metric(totals, "answers", subject="genero", detail="mujer", service="survey") == 1
    assert not [key for key in totals if key[4] == "unknown"], "nothing is left in the group she left"
    for grain in ("day", "week"):
        assert metric(line.counts(grain), "participants", service="") == 1


async def test_completions_are_judged_from_the_call_timing(line: Line) -> None:
    """eia_1 skipped after 2 s is not heard to the end; eia_2 heard for 5 minutes, until she hangs up, is."""
    await line.call(["1", "1", "1", "2"], waits={3: 2}, linger=300)
    totals = line.counts()
    assert metric(totals, "voice_plays", subject="eia_1") == 1
    assert metric(totals, "completions", subject="eia_1") == 0
    assert metric(totals, "completions", subject="eia_2") == 1


async def test_texted_messages_are_plays_without_completions(line: Line) -> None:
    """By SMS a message is sent, not listened to: it counts as a play, never as a voice play."""
    await line.text(["hola", "1", "1", "1"])
    totals = line.counts()
    assert metric(totals, "plays", subject="eia_1", channel="sms") == 1
    assert metric(totals, "voice_plays") == metric(totals, "completions") == 0
    assert metric(totals, "sessions", service="", channel="sms") == 1


async def test_participants_are_distinct_and_returning_means_another_day(line: Line) -> None:
    """Two calls today count one participant; once her first contact is 40 days back, she is returning."""
    for _ in range(2):
        await line.call(["1"])
    totals = line.counts("day")
    assert metric(totals, "sessions", service="") == 2
    assert (metric(totals, "participants", service=""), metric(totals, "returning")) == (1, 0)

    first_contact_long_ago(line.database_url)
    await line.call(["1"])
    for grain in ("day", "week", "month"):
        totals = line.counts(grain)
        assert metric(totals, "participants", service="") == 1, "still one person"
        assert metric(totals, "returning", service="") == 1, f"she came back on another day ({grain})"

    forget_rollups(line.database_url)  # as if today were the first day of a new period for her
    await line.call(["1"])
    for grain in ("day", "week", "month"):
        totals = line.counts(grain)
        assert metric(totals, "participants", service="") == 1
        assert metric(totals, "returning", service="") == 1
        assert metric(totals, "new") == 0, "her first contact was in an earlier period"


def first_contact_long_ago(database_url: str) -> None:
    """Move every caller's first contact 40 days back."""
    engine = make_sync_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(update(Caller).values(first_seen=datetime.now(UTC) - timedelta(days=40)))
    finally:
        engine.dispose()


def forget_rollups(database_url: str) -> None:
    """Empty the counters and memberships (and the sessions' snapshots), as at the start of new periods."""
    engine = make_sync_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(delete(StatsCount))
            connection.execute(delete(StatsMember))
    finally:
        engine.dispose()


async def test_a_withheld_number_counts_a_session_but_no_participant(line: Line) -> None:
    """Nobody can be told apart without a pseudonym: the session counts, the participant cannot."""
    await line.call(["1"], caller="anonymous")
    totals = line.counts()
    assert metric(totals, "sessions", service="") == 1
    assert metric(totals, "participants") == 0


async def test_a_redelivered_step_is_not_counted_twice(line: Line) -> None:
    """Twilio sends the same step again: the stored answer is replayed and the counters do not move."""
    phone = line.phone()
    first = await phone.post("/twilio/voice", {"CallStatus": "ringing"})
    again = await phone.post("/twilio/voice", {"CallStatus": "ringing"})
    assert first.text == again.text
    totals = line.counts()
    assert metric(totals, "sessions", service="") == 1
    assert metric(totals, "participants", service="") == 1


async def test_a_rebuild_from_stored_sessions_gives_the_same_counters(line: Line) -> None:
    """Recounting everything stored (as after an upgrade) lands on exactly the live counters."""
    await line.call(LIBRARY_THEN_SURVEY)
    await line.call(["2", "1", "1", "2"], caller="+51987000111", waits={2: 90}, linger=200)
    await line.text(["hola", "1", "2", "1", "2", "1", "1"], sender="+51987000222")
    live = {grain: line.counts(grain) for grain in ("day", "week", "month")}
    assert metric(live["month"], "completions") >= 1, "the replay must judge timing like the live count"
    async with sessions_for(line.database_url) as made:
        assert await rebuild(made, line.flows, ZoneInfo("America/Lima")) == (3, 0)
        assert await rebuild(made, line.flows, ZoneInfo("America/Lima")) == (3, 0)
    assert {grain: line.counts(grain) for grain in ("day", "week", "month")} == live
