"""Keep the statistics' rollups up to date as each step of a session is written.

Each session keeps a snapshot (``sessions.stats``) of what it added: the items it counted and the
participants it owns. When its demographics change (a caller gives her gender in the survey after
listening to a message), everything it added moves to the new group, so every figure is counted under
the session's final description and nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.callers.models import Caller
from app.db.base import table_of, utcnow
from app.flows.events import Answered, Event, NodeEntered, NodeKind
from app.flows.model import SKIPPED, FlowDefinition
from app.privacy.masking import mask_caller_text
from app.sessions.models import CallSession
from app.stats.counters import Item, People, count, count_in, move
from app.stats.dimensions import (
    ALL_SERVICES,
    Grain,
    known,
    local_day,
    period_end,
    period_start,
    service_of,
)
from app.stats.models import StatsMember

WORDS_PER_SECOND = 2.2
"""A calm reading pace (Spanish and Quechua prompts are read slowly for a rural audience)."""
HEARD_SHARE = 0.9
"""A message counts as listened to the end when the caller stayed this share of its length."""
MAX_STORED = 64


@dataclass
class Snapshot:
    """What one session has added to the rollups (stored as JSON on the session)."""

    day: date
    people: People
    first_day: date | None
    services: list[str] = field(default_factory=list)
    items: dict[str, int] = field(default_factory=dict)
    play: dict[str, Any] | None = None

    def dump(self) -> dict[str, object]:
        """The JSON form."""
        return {
            "day": self.day.isoformat(),
            "people": list(self.people),
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "services": self.services,
            "items": self.items,
            "play": self.play,
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> Snapshot:
        """Read the JSON form."""
        first = data.get("first_day")
        return cls(
            day=date.fromisoformat(data["day"]),
            people=People(*data["people"]),
            first_day=date.fromisoformat(first) if first else None,
            services=list(data["services"]),
            items=dict(data["items"]),
            play=data.get("play"),
        )


def people_of(session: CallSession) -> People:
    """The group a session belongs to now."""
    return People(
        known(session.gender),
        known(session.age_band),
        known(session.language),
        session.channel,
        known(session.community),
    )


def message_seconds(flow: FlowDefinition, node: str, language: str | None) -> float:
    """How long a message takes to hear, from its words at a calm pace."""
    prompt: dict[str, str] = getattr(flow.nodes.get(node), "prompt", {}) or {}
    text = prompt.get(language or "", "") or next(iter(prompt.values()), "")
    return max(3.0, len(text.split()) / WORDS_PER_SECOND)


MEMBER_KEY = ["grain", "period_start", "caller_id", "service"]
JOIN = {
    # Built once: a statement rebuilt per call costs more than running it (every new session joins).
    # One statement for the day, week and month: it returns the grains where the caller was new.
    postgres: builder(table_of(StatsMember))
    .on_conflict_do_nothing(index_elements=MEMBER_KEY)
    .returning(table_of(StatsMember).c.grain)
    for postgres, builder in ((True, postgresql.insert), (False, sqlite.insert))
}


class SessionStats:
    """Adds one session's steps to the rollups; only flushes, the conversation commits."""

    def __init__(self, db: AsyncSession, zone: ZoneInfo, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.zone = zone
        self.clock = clock

    async def step(self, session: CallSession, flow: FlowDefinition, events: tuple[Event, ...]) -> None:
        """Count what one step of ``session`` did (its events are the engine's, in order)."""
        now = self.clock() if self.clock is not None else utcnow()
        snap = await self._snapshot(session)
        current = people_of(session)
        if current != snap.people:
            await self._move(session, snap, current)
        self._judge_play(snap, now)
        for event in events:
            if isinstance(event, NodeEntered):
                await self._entered(session, flow, snap, event, now)
            elif isinstance(event, Answered):
                value = "answered" if event.kind == "open" and event.value != "skipped" else event.value
                self._add(
                    snap, Item("answers", event.question, mask_caller_text(value)[:MAX_STORED], "survey")
                )
        session.stats = snap.dump()

    async def ended(self, session: CallSession, at: datetime) -> None:
        """The call ended: judge the message that was playing, if any."""
        if session.stats is None:
            return
        snap = Snapshot.load(session.stats)
        if snap.play is None:
            return
        self._judge_play(snap, at)
        session.stats = snap.dump()

    async def _snapshot(self, session: CallSession) -> Snapshot:
        if session.stats is not None:
            return Snapshot.load(session.stats)
        first_seen = None
        if session.caller_id is not None:
            # Usually already loaded by this request (the caller was just touched): no query then.
            caller = await self.db.get(Caller, session.caller_id)
            first_seen = caller.first_seen if caller is not None else None
        snap = Snapshot(
            day=local_day(session.started_at, self.zone),
            people=people_of(session),
            first_day=local_day(first_seen, self.zone) if first_seen else None,
        )
        self._add(snap, Item("sessions"))
        await self._join(session, snap, ALL_SERVICES)
        return snap

    async def _entered(
        self, session: CallSession, flow: FlowDefinition, snap: Snapshot, event: NodeEntered, now: datetime
    ) -> None:
        service = _service(flow, event)
        if service is None:
            return
        if service not in snap.services:
            snap.services.append(service)
            self._add(snap, Item("sessions", service=service))
            await self._join(session, snap, service)
        if event.kind != NodeKind.ARTICLE:
            return
        self._judge_play(snap, now)  # a message left for the next one was not heard to the end
        self._add(snap, Item("plays", event.node, service=service))
        if session.channel == "voice":
            self._add(snap, Item("voice_plays", event.node, service=service))
            seconds = message_seconds(flow, event.node, session.language)
            snap.play = {"node": event.node, "service": service, "at": now.isoformat(), "seconds": seconds}

    def _judge_play(self, snap: Snapshot, now: datetime) -> None:
        """Count the pending message as heard if the caller stayed long enough; forget it either way."""
        play, snap.play = snap.play, None
        if play is None:
            return
        stayed = (now - datetime.fromisoformat(play["at"])).total_seconds()
        if stayed >= HEARD_SHARE * float(play["seconds"]):
            self._add(snap, Item("completions", play["node"], service=play["service"]))

    def _add(self, snap: Snapshot, item: Item) -> None:
        key = item.encode()
        snap.items[key] = snap.items.get(key, 0) + 1
        count(self.db, item, snap.day, snap.people)

    async def _join(self, session: CallSession, snap: Snapshot, service: str) -> None:
        """Count the caller as a participant in each period of this day, unless already counted there."""
        if session.caller_id is None or snap.first_day is None:
            return  # a withheld number: the session counts, but nobody can be told apart
        came_before = snap.first_day < snap.day
        periods = {grain: period_start(grain, snap.day) for grain in Grain}
        rows = [
            {
                "grain": grain.value,
                "period_start": start,
                "caller_id": session.caller_id,
                "service": service,
                "owner": session.id,
                "is_new": start <= snap.first_day <= period_end(grain, start),
                "came_back": came_before,
                **snap.people._asdict(),
            }
            for grain, start in periods.items()
        ]
        joined = await self._insert_members(rows)
        for row in rows:
            grain = Grain(row["grain"])
            if grain.value in joined:
                for metric in _participant_metrics(row["is_new"], came_before):
                    count_in(self.db, Item(metric, service=service), grain, periods[grain], snap.people)
            elif came_before:
                await self._now_returning(grain, periods[grain], session.caller_id, service)

    async def _insert_members(self, rows: list[dict[str, Any]]) -> set[str]:
        """Insert memberships unless the caller is already counted there; the grains inserted."""
        connection = await self.db.connection()
        statement = JOIN[connection.dialect.name == "postgresql"]
        return set((await connection.execute(statement, rows)).scalars())

    async def _now_returning(self, grain: Grain, start: date, caller_id: int, service: str) -> None:
        """A participant counted earlier in the period is back on another day: count them as returning."""
        row = (
            await self.db.execute(
                update(StatsMember)
                .where(
                    StatsMember.grain == grain.value,
                    StatsMember.period_start == start,
                    StatsMember.caller_id == caller_id,
                    StatsMember.service == service,
                    StatsMember.came_back.is_(False),
                )
                .values(came_back=True)
                .returning(*_people_columns())
            )
        ).first()
        if row is not None:
            count_in(self.db, Item("returning", service=service), grain, start, People(*row))

    async def _move(self, session: CallSession, snap: Snapshot, new: People) -> None:
        """Move everything the session added from its old group to its new one."""
        old, snap.people = snap.people, new
        for key, amount in sorted(snap.items.items()):
            move(self.db, Item.decode(key), snap.day, old, new, amount)
        owned = await self.db.execute(
            update(StatsMember)
            .where(StatsMember.owner == session.id)
            .values(**new._asdict())
            .returning(
                StatsMember.grain,
                StatsMember.period_start,
                StatsMember.service,
                StatsMember.is_new,
                StatsMember.came_back,
            )
            .execution_options(synchronize_session=False)
        )
        for grain, start, service, is_new, returning in sorted(owned.all()):
            for metric in _participant_metrics(is_new, returning):
                item = Item(metric, service=service)
                count_in(self.db, item, Grain(grain), start, old, -1)
                count_in(self.db, item, Grain(grain), start, new, 1)


def _answer_value(event: Answered) -> str:
    """What an answer counts as: its choice or number; an open answer is just ``answered``."""
    if event.kind == "open" and event.value != SKIPPED:
        return "answered"
    return mask_caller_text(event.value)[:MAX_STORED]


def _participant_metrics(is_new: bool, returning: bool) -> list[str]:
    """The participant figures one member row adds to."""
    return ["participants", *(["new"] if is_new else []), *(["returning"] if returning else [])]


def _people_columns() -> tuple[Any, ...]:
    return (
        StatsMember.gender,
        StatsMember.age_band,
        StatsMember.language,
        StatsMember.channel,
        StatsMember.community,
    )


def _service(flow: FlowDefinition, event: NodeEntered) -> str | None:
    """The service a reached node belongs to, by name."""
    found = service_of(flow, event.node, event.kind)
    return found.value if found is not None else None
