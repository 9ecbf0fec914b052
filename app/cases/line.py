"""The host side of the two-way line: what the engine reports becomes cases, and cases fill its events."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.cases.media import MediaSigner
from app.cases.models import Case, CaseAnswer
from app.cases.service import CaseService
from app.flows import engine
from app.flows.events import (
    AnswerFeedback,
    AnswerPart,
    CaseOpened,
    CodeChecked,
    CodeEntered,
    Event,
    FollowedUp,
    PlayAnswer,
    Recording,
    ReplyChosen,
    SayCode,
    Step,
)
from app.flows.model import FlowDefinition
from app.recordings.service import RecordingService, take_recording
from app.sessions.models import CallSession
from app.throttle.service import ThrottleService

log = logging.getLogger(__name__)
CODE_BUCKET = "case_code"
CODE_WINDOW = timedelta(minutes=15)
MAX_WRONG_CODES = 5
"""Wrong codes per caller (or call, for a withheld number) in the window before codes are refused."""
MAX_LOOKUPS = 3
"""Code checks per step: the engine asks for one at a time, so more means a bug, not a caller."""


class CaseLine:
    """Only flushes; the conversation's unit of work commits the case with the step that opened it."""

    def __init__(
        self,
        db: AsyncSession,
        cases: CaseService,
        recordings: RecordingService,
        throttle: ThrottleService,
        media_url: Callable[[str], str],
    ) -> None:
        self.db = db
        self.cases = cases
        self.recordings = recordings
        self.throttle = throttle
        self.media_url = media_url

    async def unheard(self, caller_id: int | None) -> tuple[tuple[str, ...], int]:
        """Codes of the caller's cases with answers she has not heard (oldest first), and how many answers."""
        if caller_id is None:
            return (), 0
        waiting = await self.cases.unheard(caller_id)
        codes: list[str] = []
        for case, _ in waiting:
            if case.code not in codes:
                codes.append(case.code)
        return tuple(codes), len(waiting)

    async def settle(self, session: CallSession, flow: FlowDefinition, step: Step, e164: str | None) -> Step:
        """Act on the step's case events, answer the engine's code checks, fill in codes and answers."""
        events: list[Event] = []
        opened: Case | None = None
        for _ in range(MAX_LOOKUPS + 1):
            lookup: CodeChecked | None = None
            for event in step.events:
                filled, opened, checked = await self._handle(session, event, opened, e164)
                events.append(filled)
                lookup = checked or lookup
            if lookup is None:
                return Step(step.state, tuple(events))
            step = engine.resume(flow, step.state, lookup)
        raise RuntimeError("the engine asked for more code checks than one step allows")

    async def _handle(
        self, session: CallSession, event: Event, opened: Case | None, e164: str | None
    ) -> tuple[Event, Case | None, CodeChecked | None]:
        if isinstance(event, CaseOpened):
            recording_id = await self._recording(session, event.recording)
            opened = await self.cases.open(session, event.topic, text=event.text, recording_id=recording_id)
            log.info("case %s opened by %s in session %s", opened.id, session.channel, session.id)
        elif isinstance(event, SayCode) and opened is not None:
            return dataclasses.replace(event, code=opened.code), opened, None
        elif isinstance(event, FollowedUp):
            await self._follow_up(session, event)
        elif isinstance(event, ReplyChosen) and event.by == "sms":
            await self._reply_by_sms(session, opened, e164)
        elif isinstance(event, CodeEntered):
            return event, opened, CodeChecked(event.code, await self._check(session, event.code))
        elif isinstance(event, PlayAnswer):
            return await self._play(event), opened, None
        elif isinstance(event, AnswerFeedback):
            await self._feedback(event)
        return event, opened, None

    async def _recording(self, session: CallSession, recording: Recording | None) -> int | None:
        """Register the question's recording for the worker; a refused URL leaves the case without it."""
        if recording is None:
            return None
        stored = await take_recording(
            self.recordings, session.id, recording.sid, recording.url, recording.duration
        )
        return stored.id if stored is not None else None

    async def _follow_up(self, session: CallSession, event: FollowedUp) -> None:
        case = await self.cases.cases.by_code(event.code)
        if case is None:
            log.warning("session %s: follow-up to a case that no longer exists", session.id)
            return
        recording_id = await self._recording(session, event.recording)
        await self.cases.follow_up(case, session.channel, text=event.text, recording_id=recording_id)

    async def _reply_by_sms(self, session: CallSession, opened: Case | None, e164: str | None) -> None:
        case = opened or await self.cases.cases.latest_of_session(session.id)
        if case is None or e164 is None:
            log.warning("session %s: an SMS answer was chosen with no case or number", session.id)
            return
        await self.cases.reply_by_sms(case, e164)

    async def _check(self, session: CallSession, code: str) -> str:
        """answered, waiting, unknown or locked; wrong codes are counted so guessing stops soon."""
        who = f"caller:{session.caller_id}" if session.caller_id is not None else f"session:{session.id}"
        if await self.throttle.count(CODE_BUCKET, who, CODE_WINDOW) >= MAX_WRONG_CODES:
            return "locked"
        case = await self.cases.cases.by_code(code)
        if case is None:
            await self.throttle.record(CODE_BUCKET, who)
            return "unknown"
        return "answered" if await self.cases.cases.latest_answer(case.id) is not None else "waiting"

    async def _play(self, event: PlayAnswer) -> PlayAnswer:
        """The answers not heard yet (or else the latest), marked heard as they are given."""
        case = await self.cases.cases.by_code(event.code)
        if case is None:
            return event
        answers = [answer for answer in await self.cases.cases.answers(case.id) if answer.heard_at is None]
        if not answers:
            latest = await self.cases.cases.latest_answer(case.id)
            answers = [latest] if latest is not None else []
        for answer in answers:
            await self.cases.heard(answer)
        return dataclasses.replace(event, parts=tuple(self._part(answer) for answer in answers))

    def _part(self, answer: CaseAnswer) -> AnswerPart:
        if answer.audio_id is not None:
            return AnswerPart(audio_url=self.media_url(answer.audio_id))
        return AnswerPart(text=answer.text)

    async def _feedback(self, event: AnswerFeedback) -> None:
        case = await self.cases.cases.by_code(event.code)
        latest = await self.cases.cases.latest_answer(case.id) if case is not None else None
        if latest is not None:
            await self.cases.feedback(latest, event.value)


def media_url_for(signer: MediaSigner, base_url: str) -> Callable[[str], str]:
    """Signed answer URLs on the public base URL."""
    return lambda audio_id: signer.url(base_url, audio_id)
