"""Conversations: run the engine on stored state and record every step, exactly once per webhook."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.callers.models import Caller
from app.callers.repository import CallerRepository
from app.db.base import utcnow
from app.errors import CallNotFound, SessionNotFound
from app.flows import engine
from app.flows.events import (
    Event,
    Hangup,
    Input,
    InputReceived,
    LanguageChosen,
    NodeEntered,
    NodeKind,
    RunState,
    Step,
    Subscribed,
)
from app.flows.model import FlowDefinition
from app.privacy.masking import mask_caller_text
from app.privacy.pseudonym import Pseudonymizer
from app.recordings.service import RecordingRegistrar
from app.sessions.models import CallSession
from app.sessions.repository import SessionRepository
from app.stats import DEFAULT_STATS_ZONE
from app.stats.rollup import SessionStats
from app.survey.service import SurveyService

Move = Callable[[FlowDefinition, RunState], Step]
"""An engine call on a flow and a state: resume with an input, or jump to a node."""
MAX_STORED_VALUE = 32
"""Keys stored per input; anything longer is a forged or broken request, kept only as a prefix."""


class Channel(StrEnum):
    """How the caller reaches us."""

    VOICE = "voice"
    SMS = "sms"


@dataclass(frozen=True)
class Turn:
    """A processed step waiting to be rendered; ``number`` is the step's index in the session."""

    session: CallSession
    number: int
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Replay:
    """A step answered before; the stored answer is sent again and nothing is stored."""

    response: str


class CaseHost(Protocol):
    """The two-way line (app.cases.line.CaseLine): what the engine must know, and acting on its events."""

    async def unheard(self, caller_id: int | None) -> tuple[tuple[str, ...], int]:
        """Codes of the caller's cases with answers she has not heard, and how many answers."""

    async def settle(self, session: CallSession, flow: FlowDefinition, step: Step, e164: str | None) -> Step:
        """Open cases, check codes and fill in codes and answers; the step as it is to be rendered."""


class NewsSubscriber(Protocol):
    """Stores a caller's consent to news by SMS (the broadcasts service)."""

    async def subscribe(self, caller_id: int, e164: str, language: str, channel: str) -> None:
        """Remember the number encrypted and subscribe the caller in a language."""


class ConversationService:
    """Starts and advances sessions; the caller's route renders events and calls `commit`."""

    def __init__(
        self,
        db: AsyncSession,
        flows: dict[str, FlowDefinition],
        pseudonyms: Pseudonymizer,
        news: NewsSubscriber | None = None,
        recordings: RecordingRegistrar | None = None,
        cases: CaseHost | None = None,
        stats: SessionStats | None = None,
    ) -> None:
        self.db = db
        self.stats = stats or SessionStats(db, ZoneInfo(DEFAULT_STATS_ZONE))
        self.cases = cases
        self.flows = flows
        self.pseudonyms = pseudonyms
        self.news = news
        self.sessions = SessionRepository(db)
        self.callers = CallerRepository(db)
        self.survey = SurveyService(db, recordings)

    async def begin(
        self, channel: Channel, provider_id: str, e164: str | None, flow_id: str
    ) -> Turn | Replay:
        """Start a session for a new call, or replay the first answer if Twilio redelivers it."""
        existing = await self.sessions.by_provider_id(channel, provider_id)
        if existing is not None:
            return await self._replay(existing, 0)
        caller = await self.caller(e164) if e164 else None
        return await self.begin_for(caller, channel, provider_id, flow_id)

    async def replay_first(self, channel: Channel, provider_id: str) -> Replay | None:
        """The first answer already given to this call or conversation, if Twilio redelivers it."""
        existing = await self.sessions.by_provider_id(channel, provider_id)
        return await self._replay(existing, 0) if existing is not None else None

    async def caller(self, e164: str) -> Caller:
        """The caller behind a number, created on first contact; only the pseudonym is stored."""
        return await self.callers.touch(self.pseudonyms.pseudonym(e164), utcnow())

    async def begin_for(
        self, caller: Caller | None, channel: Channel, provider_id: str, flow_id: str
    ) -> Turn | Replay:
        """Start a session for a known (or anonymous) caller."""
        now = utcnow()
        flow = self.flows[flow_id]
        memory = await self.survey.memory(caller.id if caller else None, flow)
        if self.cases is not None:
            codes, count = await self.cases.unheard(caller.id if caller else None)
            memory = memory.model_copy(update={"unheard": codes, "new_answers": count})
        step = engine.start(flow, language=caller.language if caller else None, memory=memory)
        session = CallSession(
            id=secrets.token_hex(16),
            caller_id=caller.id if caller else None,
            channel=channel,
            provider_id=provider_id,
            flow_id=flow_id,
            language=step.state.language,
            state=step.state.model_dump(),
            step=0,
            status="active",
            started_at=now,
            updated_at=now,
        )
        self.sessions.add(session)
        if self.cases is not None:
            step = await self.cases.settle(session, flow, step, None)
        try:
            await self._record(session, 0, step, RunState(node=flow.start, language=step.state.language))
        except IntegrityError:
            # A simultaneous delivery of the same call created the session first: answer as it did.
            await self.db.rollback()
            winner = await self.sessions.by_provider_id(channel, provider_id)
            if winner is None:
                raise
            return await self._replay(winner, 0)
        return Turn(session, 0, step.events)

    async def advance(
        self, session_id: str, number: int, provider_id: str, given: Input, e164: str | None = None
    ) -> Turn | Replay:
        """Apply the input of step ``number``; a redelivered step replays its stored answer."""
        session = await self.sessions.lock(session_id)
        if session is None or session.provider_id != provider_id:
            raise SessionNotFound(session_id)
        if number != session.step + 1:
            # A step from the future was never offered: ask the current question again. Either way only a
            # stored answer is read, so the row is let go now, not when the response has been sent: a burst
            # of redeliveries would otherwise queue each behind the others' whole requests.
            replayed = min(number, session.step)
            await self.db.rollback()
            return await self._replay_step(session_id, replayed)
        return await self.apply(session, lambda flow, state: engine.resume(flow, state, given), e164)

    async def apply(self, session: CallSession, move: Move, e164: str | None = None) -> Turn:
        """Run one engine move on a locked session as its next step and record what happened."""
        flow = self.flows.get(session.flow_id)
        if flow is None:
            raise SessionNotFound(session.id)
        before = RunState.model_validate(session.state)
        step = move(flow, before)
        if self.cases is not None:
            step = await self.cases.settle(session, flow, step, e164)
        number = session.step + 1
        session.state = step.state.model_dump()
        session.step = number
        session.language = step.state.language
        session.updated_at = utcnow()
        await self._record(session, number, step, before)
        await self._subscribe(session, step, e164)
        return Turn(session, number, step.events)

    async def _subscribe(self, session: CallSession, step: Step, e164: str | None) -> None:
        """Store consent to news given at a subscribe node (the engine only knows there is a number)."""
        for event in step.events:
            if not isinstance(event, Subscribed):
                continue
            if self.news is None or e164 is None or session.caller_id is None:
                raise RuntimeError("a subscription needs the caller's number and the news service")
            await self.news.subscribe(session.caller_id, e164, event.language, session.channel)

    async def commit(self, turn: Turn, response: str) -> str:
        """Store the answer with the step and commit; if another delivery won a race, send its answer."""
        session_id = turn.session.id  # read now: a rollback expires the session object
        try:
            await self.sessions.add_delivery(session_id, turn.number, response)
            await self.db.commit()
        except IntegrityError:
            await self.db.rollback()
            stored = await self.sessions.delivery(session_id, turn.number)
            if stored is None:
                raise
            return stored
        return response

    async def call_status(self, provider_id: str, status: str, duration: int | None) -> None:
        """Record how a call ended; repeated callbacks just set the same values again."""
        session = await self.sessions.by_provider_id(Channel.VOICE, provider_id)
        if session is None:
            raise CallNotFound(provider_id)
        session.status = status
        if duration is not None:
            session.duration_seconds = duration
        if status in {"completed", "busy", "failed", "no-answer", "canceled"} and session.ended_at is None:
            session.ended_at = utcnow()
            await self.stats.ended(session, session.ended_at)
        await self.db.commit()

    async def _replay(self, session: CallSession, number: int) -> Replay:
        return await self._replay_step(session.id, number)

    async def _replay_step(self, session_id: str, number: int) -> Replay:
        stored = await self.sessions.delivery(session_id, number)
        if stored is None:
            raise SessionNotFound(session_id)
        return Replay(stored)

    async def _record(self, session: CallSession, number: int, step: Step, before: RunState) -> None:
        chosen = [e.language for e in step.events if isinstance(e, LanguageChosen)]
        if session.caller_id is not None and chosen:
            await self.callers.remember_language(session.caller_id, chosen[-1])
        flow = self.flows.get(session.flow_id)
        if flow is not None:
            # First: a profile answer describes the session, and so the interactions written below.
            await self.survey.record(session, step.events, flow)
            await self.stats.step(session, flow, step.events)
        if self.db.new:
            # A new session (or survey run) must exist before the rows that refer to it; changes to existing
            # rows wait for the commit's flush (one pass of the unit of work per step, not two).
            await self.db.flush()
        await self.sessions.add_interactions(list(_interactions(session, number, step.events, before)))


def stored_value(value: str) -> str:
    """An input as stored: digit runs that may be a phone number masked first, then bounded."""
    return mask_caller_text(value)[:MAX_STORED_VALUE]


def _interactions(
    session: CallSession, number: int, events: tuple[Event, ...], before: RunState
) -> Iterator[dict[str, object]]:
    """One interactions row per stored event: the language in force then, the session's demographics."""
    language, current_node = before.language, before.node
    now = utcnow()
    seq = 0
    for event in events:
        row: dict[str, str | None]
        if isinstance(event, NodeEntered) and event.kind == NodeKind.CONSENT:
            continue  # reaching a survey's consent is counted, never linked to a person
        if isinstance(event, NodeEntered):
            current_node = event.node
            row = {"node": event.node, "kind": event.kind, "event": "entered", "value": None, "outcome": None}
        elif isinstance(event, InputReceived):
            row = {
                "node": event.node,
                "kind": event.kind,
                "event": "input",
                "value": stored_value(event.value),
                "outcome": event.outcome,
            }
        elif isinstance(event, LanguageChosen):
            language = event.language
            row = {
                "node": current_node,
                "kind": "language",
                "event": "language",
                "value": event.language,
                "outcome": None,
            }
        elif isinstance(event, Hangup):
            row = {
                "node": current_node,
                "kind": "end",
                "event": "hangup",
                "value": event.reason,
                "outcome": None,
            }
        else:
            continue
        seq += 1
        yield {
            "session_id": session.id,
            "step": number,
            "seq": seq,
            "channel": session.channel,
            "flow_id": session.flow_id,
            "language": language,
            "gender": session.gender,
            "age_band": session.age_band,
            "community": session.community,
            "created_at": now,
            **row,
        }
