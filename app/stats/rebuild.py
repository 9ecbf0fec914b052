"""Recount the rollups from what is stored: for a deployment that had calls before statistics existed.

Each session is replayed step by step, in the order sessions started, through the same code that counts
live webhooks (``SessionStats``), with the clock set to each step's time so message completions are
judged as they were. Cases are recounted from their timestamps. Running it twice gives the same counters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cases.models import Case
from app.flows.events import Answered, Event, NodeEntered, NodeKind
from app.flows.model import FlowDefinition
from app.sessions.models import CallSession, Interaction
from app.stats.cases import CaseStats
from app.stats.models import StatsCount, StatsMember
from app.stats.rollup import SessionStats
from app.survey.models import Answer

BATCH = 500


async def rebuild(
    sessions: async_sessionmaker[AsyncSession], flows: dict[str, FlowDefinition], zone: ZoneInfo
) -> tuple[int, int]:
    """Empty the rollups and count every stored session and case again; how many of each."""
    async with sessions() as db:
        await db.execute(delete(StatsCount))
        await db.execute(delete(StatsMember))
        await db.execute(update(CallSession).values(stats=None))
        await db.commit()
        ids = list(await db.scalars(select(CallSession.id).order_by(CallSession.started_at, CallSession.id)))
    for start in range(0, len(ids), BATCH):
        async with sessions() as db:
            for session_id in ids[start : start + BATCH]:
                await _replay(db, flows, zone, session_id)
            await db.commit()
    async with sessions() as db:
        counted = CaseStats(db, zone)
        cases = (await db.scalars(select(Case).order_by(Case.id))).all()
        for case in cases:
            counted.opened(case)
            if case.first_answered_at is not None:
                counted.answered(case, case.first_answered_at)
            if case.closed_at is not None:
                counted.closed(case, case.closed_at)
        await db.commit()
    return len(ids), len(cases)


async def _replay(
    db: AsyncSession, flows: dict[str, FlowDefinition], zone: ZoneInfo, session_id: str
) -> None:
    session = await db.get(CallSession, session_id)
    flow = flows.get(session.flow_id) if session is not None else None
    if session is None or flow is None:
        return  # a flow that no longer exists cannot say which service a node belonged to
    steps = await _steps(db, flow, session_id)
    clock = _Clock(session.started_at)
    stats = SessionStats(db, zone, clock)
    for at, events in steps:
        clock.now = at
        await stats.step(session, flow, tuple(events))
    if session.ended_at is not None:
        await stats.ended(session, session.ended_at)


async def _steps(
    db: AsyncSession, flow: FlowDefinition, session_id: str
) -> list[tuple[datetime, list[Event]]]:
    """The session's steps in order, each with its time and the events that count."""
    rows: Sequence[Interaction] = (
        await db.scalars(
            select(Interaction)
            .where(Interaction.session_id == session_id)
            .order_by(Interaction.step, Interaction.seq)
        )
    ).all()
    answers = (
        await db.scalars(select(Answer).where(Answer.session_id == session_id).order_by(Answer.id))
    ).all()
    question_of = {id(node): question for question, node in flow.questions().items()}
    by_step: dict[int, list[Event]] = defaultdict(list)
    times: dict[int, datetime] = {}
    answer_step: dict[str, int] = {}
    for row in rows:
        times.setdefault(row.step, row.created_at)
        if row.event == "entered":
            by_step[row.step].append(NodeEntered(row.node, NodeKind(row.kind)))
        elif row.event == "input" and row.kind == NodeKind.QUESTION:
            node = flow.nodes.get(row.node)
            answer_step.setdefault(question_of.get(id(node), row.node), row.step)
    for answer in answers:
        step = answer_step.get(answer.question_id, max(times, default=0))
        by_step[step].append(Answered(answer.question_id, answer.value, answer.kind))
    return [(times[step], by_step[step]) for step in sorted(times)]


class _Clock:
    """The time of the step being replayed."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
