"""Survey runs across calls and messages: what the engine must know, and storing what it reports."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.broadcasts.models import Subscription
from app.db.base import utcnow
from app.db.upsert import insert_ignoring_conflicts
from app.floip.catalogue import PackageCatalogue
from app.flows.events import (
    Answered,
    ConsentGiven,
    Event,
    ProfileReused,
    RunRestarted,
    RunState,
    SurveyClosed,
)
from app.flows.model import SKIPPED, FlowDefinition
from app.privacy.masking import mask_phone_numbers
from app.recordings.service import RecordingRegistrar, take_recording
from app.sessions.models import CallSession
from app.survey.models import Answer, ConsentCount, SurveyRun

PROFILE_FIELDS = ("gender", "age_band", "community")
# Every survey answer looks up its run: built once, with bound parameters (building a query costs more
# than running it).
_OPEN_RUNS = select(SurveyRun).where(SurveyRun.flow_id == bindparam("flow_id"), SurveyRun.status == "open")
CALLERS_OPEN_RUN = (
    _OPEN_RUNS.where(SurveyRun.caller_id == bindparam("caller_id")).order_by(SurveyRun.id.desc()).limit(1)
)
SESSIONS_OPEN_RUN = (
    _OPEN_RUNS.where(SurveyRun.last_session_id == bindparam("session_id"))
    .order_by(SurveyRun.id.desc())
    .limit(1)
)


class SurveyService:
    """Keeps one open run per caller and survey; only flushes, the conversation commits."""

    def __init__(self, db: AsyncSession, recordings: RecordingRegistrar | None = None) -> None:
        self.db = db
        self.recordings = recordings

    async def memory(self, caller_id: int | None, flow: FlowDefinition) -> RunState:
        """What the engine needs to know at the start of a session: an unfinished run, a stored profile."""
        if caller_id is None:
            return RunState(node=flow.start, reachable=False)
        run = await self._open_run(caller_id, flow.id)
        answered: tuple[str, ...] = ()
        if run is not None:
            answered = tuple(await self.db.scalars(select(Answer.question_id).where(Answer.run_id == run.id)))
        profile = await self._stored_profile(caller_id, flow)
        return RunState(
            node=flow.start,
            open_run=run is not None and bool(answered),
            answered=answered,
            has_profile=profile is not None,
        )

    async def record(self, session: CallSession, events: tuple[Event, ...], flow: FlowDefinition) -> None:
        """Store answers, consent counts and run changes reported by one engine step."""
        for event in events:
            if isinstance(event, ConsentGiven):
                await self._count_consent(session, event)
                if event.accepted:
                    await self._close_open(session, "restarted")
                    await self._start_run(session, event.survey)
                    # Publish the survey's questions as they are now, so a question removed from the flow
                    # later still describes the answers given to it.
                    await PackageCatalogue(self.db).version(flow, event.survey, utcnow())
            elif isinstance(event, RunRestarted):
                await self._close_open(session, "restarted")
            elif isinstance(event, Answered):
                await self._answer(session, event)
            elif isinstance(event, ProfileReused):
                await self._reuse_profile(session, flow)
            elif isinstance(event, SurveyClosed):
                await self._close_open(session, event.status)

    async def _open_run(self, caller_id: int, flow_id: str) -> SurveyRun | None:
        return await self.db.scalar(CALLERS_OPEN_RUN, {"flow_id": flow_id, "caller_id": caller_id})

    async def _session_run(self, session: CallSession) -> SurveyRun | None:
        """The open run this session is answering (by caller, or by session for a withheld number)."""
        if session.caller_id is not None:
            return await self._open_run(session.caller_id, session.flow_id)
        return await self.db.scalar(SESSIONS_OPEN_RUN, {"flow_id": session.flow_id, "session_id": session.id})

    async def _start_run(self, session: CallSession, survey: str) -> SurveyRun:
        now = utcnow()
        run = SurveyRun(
            public_id=secrets.token_hex(16),
            caller_id=session.caller_id,
            flow_id=session.flow_id,
            survey=survey,
            status="open",
            language=session.language,
            last_session_id=session.id,
            started_at=now,
            updated_at=now,
        )
        self.db.add(run)
        await self.db.flush()
        return run

    async def _close_open(self, session: CallSession, status: str) -> None:
        run = await self._session_run(session)
        if run is not None:
            run.status = status
            run.updated_at = utcnow()
            run.completed_at = run.updated_at if status == "completed" else None

    async def _answer(self, session: CallSession, event: Answered) -> None:
        """Store an answer once per run; a profile item also describes the session from now on."""
        recording_id = await self._take_recording(session, event)
        run = await self._session_run(session)
        if run is None:
            return  # an answer outside an accepted survey (a flow without consent) is not a result
        text = mask_phone_numbers(event.text) if event.text else None
        # A recording that could not be taken is no answer: it counts as skipped.
        value = SKIPPED if event.recording is not None and recording_id is None else event.value
        await self._insert_answer(
            run,
            session,
            event.question,
            value,
            event.kind,
            utcnow(),
            text=text,
            recording_id=recording_id,
        )
        if event.profile in PROFILE_FIELDS:
            described = None if event.value in {SKIPPED, "prefiero_no_decir"} else event.value
            setattr(session, event.profile, described)
            setattr(run, event.profile, described)
            if event.profile == "community":
                await self._news_community(session.caller_id, described)
        run.last_session_id = session.id
        run.updated_at = utcnow()

    async def _insert_answer(
        self,
        run: SurveyRun,
        session: CallSession,
        question: str,
        value: str,
        kind: str,
        now: datetime,
        *,
        text: str | None = None,
        recording_id: int | None = None,
    ) -> None:
        await insert_ignoring_conflicts(
            self.db,
            Answer,
            {
                "run_id": run.id,
                "session_id": session.id,
                "flow_id": run.flow_id,
                "question_id": question,
                "value": value,
                "kind": kind,
                "channel": session.channel,
                "language": session.language,
                "text": text,
                "recording_id": recording_id,
                "created_at": now,
            },
            ["run_id", "question_id"],
        )

    async def _take_recording(self, session: CallSession, event: Answered) -> int | None:
        """Every recording is registered, even a skip's, so the worker deletes it at Twilio."""
        if event.recording is None:
            return None
        if self.recordings is None:
            raise RuntimeError("a spoken answer arrived but no recording store is configured")
        recording = event.recording
        stored = await take_recording(
            self.recordings, session.id, recording.sid, recording.url, recording.duration
        )
        if stored is None:
            return None
        return None if event.value == SKIPPED else stored.id

    async def _stored_profile(
        self, caller_id: int, flow: FlowDefinition, excluding: int | None = None
    ) -> SurveyRun | None:
        """The profile this phone gave last (in a run other than ``excluding``), if it may be offered again.

        Only the latest run with a profile answer counts: an under-18 answer there (the run closed as
        ineligible) or a profile left unfinished means the caller is asked again, never surveyed on an
        older profile.
        """
        questions = set(flow.profile_questions().values())
        if not questions:
            return None
        query = (
            select(SurveyRun)
            .join(Answer, Answer.run_id == SurveyRun.id)
            .where(SurveyRun.caller_id == caller_id, Answer.question_id.in_(questions))
        )
        if excluding is not None:
            query = query.where(SurveyRun.id != excluding)
        latest = await self.db.scalar(query.order_by(SurveyRun.id.desc()).limit(1))
        if latest is None or latest.status == "ineligible":
            return None
        given = await self.db.scalar(
            select(func.count(func.distinct(Answer.question_id))).where(
                Answer.run_id == latest.id, Answer.question_id.in_(questions)
            )
        )
        return latest if given == len(questions) else None

    async def _reuse_profile(self, session: CallSession, flow: FlowDefinition) -> None:
        """The same person: their last profile describes this run and session; its answers are copied."""
        run = await self._session_run(session)
        if run is None or session.caller_id is None:
            return
        previous = await self._stored_profile(session.caller_id, flow, excluding=run.id)
        if previous is None:
            return
        questions = set(flow.profile_questions().values())
        given = await self.db.scalars(
            select(Answer).where(Answer.run_id == previous.id, Answer.question_id.in_(questions))
        )
        now = utcnow()
        await self._news_community(session.caller_id, previous.community)
        for field in PROFILE_FIELDS:
            setattr(session, field, getattr(previous, field))
            setattr(run, field, getattr(previous, field))
        # Every profile answer, skips included, so a continued run never asks a profile question again.
        for answer in list(given):
            await self._insert_answer(run, session, answer.question_id, answer.value, answer.kind, now)

    async def _news_community(self, caller_id: int | None, community: str | None) -> None:
        """A news subscriber's community follows what they said last, so community news reaches them."""
        if caller_id is not None:
            await self.db.execute(
                update(Subscription).where(Subscription.caller_id == caller_id).values(community=community)
            )

    async def _count_consent(self, session: CallSession, event: ConsentGiven) -> None:
        """Add one to today's accepted or declined count; nothing links it to the caller."""
        key = {
            "flow_id": session.flow_id,
            "survey": event.survey,
            "day": utcnow().date(),
            "channel": session.channel,
            "language": session.language or "-",
        }
        column = "accepted" if event.accepted else "declined"
        await insert_ignoring_conflicts(
            self.db, ConsentCount, {**key, "accepted": 0, "declined": 0}, list(key)
        )
        await self.db.execute(
            update(ConsentCount)
            .where(*(getattr(ConsentCount, name) == value for name, value in key.items()))
            .values({column: getattr(ConsentCount, column) + 1})
        )
