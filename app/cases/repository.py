"""Every query about cases, their messages, answers and notes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.cases.models import Case, CaseAnswer, CaseMessage, CaseNote, CaseStatus, ReplyBy
from app.recordings.models import Recording, RecordingStatus
from app.staff.models import StaffUser


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows; None means any. ``older_than`` keeps cases created before it."""

    status: str | None = None
    language: str | None = None
    topic: str | None = None
    channel: str | None = None
    older_than: datetime | None = None
    open_only: bool = False
    """Everything not closed (the queue's default view)."""


class CaseRepository:
    """Case rows: lookup, the queue, and the parts of one case."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, case_id: int, *, lock: bool = False) -> Case | None:
        """A case by id; ``lock`` holds it (PostgreSQL) for a change that must not interleave."""
        query = select(Case).where(Case.id == case_id)
        if lock:
            query = query.with_for_update()
        return await self.db.scalar(query)

    async def by_code(self, code: str) -> Case | None:
        """The case a caller's code names."""
        return await self.db.scalar(select(Case).where(Case.code == code))

    async def latest_of_session(self, session_id: str) -> Case | None:
        """The case a conversation opened last."""
        query = select(Case).where(Case.session_id == session_id).order_by(Case.id.desc()).limit(1)
        return await self.db.scalar(query)

    async def code_taken(self, code: str) -> bool:
        """Whether a code is in use (codes of purged cases may come back)."""
        return await self.db.scalar(select(func.count()).where(Case.code == code)) != 0

    async def queue(self, given: QueueFilter, limit: int, offset: int = 0) -> Sequence[Case]:
        """Cases matching the filter, oldest first."""
        query = (
            select(Case)
            .where(*_conditions(given))
            .order_by(Case.created_at, Case.id)
            .limit(limit)
            .offset(offset)
        )
        return (await self.db.scalars(query)).all()

    async def counts_by_status(self, given: QueueFilter) -> dict[str, int]:
        """How many cases match the filter in each status (the status filter itself is ignored)."""
        other = QueueFilter(None, given.language, given.topic, given.channel, given.older_than, False)
        query = select(Case.status, func.count()).where(*_conditions(other)).group_by(Case.status)
        return {status: int(count) for status, count in await self.db.execute(query)}

    async def count(self, given: QueueFilter) -> int:
        """How many cases match the filter (for paging)."""
        query = select(func.count()).select_from(Case).where(*_conditions(given))
        return int(await self.db.scalar(query) or 0)

    async def filter_values(self) -> dict[str, list[str]]:
        """The languages, topics and channels cases have, for the queue's filter menus."""
        values: dict[str, list[str]] = {}
        for name, column in (("language", Case.language), ("topic", Case.topic), ("channel", Case.channel)):
            values[name] = list(await self.db.scalars(select(column).distinct().order_by(column)))
        return values

    async def staff_emails(self, user_ids: set[int]) -> dict[int, str]:
        """The e-mail of each staff id (assignees, note and answer authors)."""
        if not user_ids:
            return {}
        query = select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(user_ids))
        return {int(user_id): str(email) for user_id, email in (await self.db.execute(query)).all()}

    async def recording_states(self, case_ids: Sequence[int]) -> dict[int, set[str]]:
        """The statuses of each case's caller recordings (e.g. to show "recording pending")."""
        if not case_ids:
            return {}
        query = (
            select(CaseMessage.case_id, Recording.status)
            .join(Recording, Recording.id == CaseMessage.recording_id)
            .where(CaseMessage.case_id.in_(case_ids))
        )
        states: dict[int, set[str]] = {}
        for case_id, status in await self.db.execute(query):
            states.setdefault(case_id, set()).add(status)
        return states

    async def recordings(self, case_id: int) -> dict[int, Recording]:
        """The caller's recordings of a case, by recording id."""
        query = (
            select(Recording)
            .join(CaseMessage, CaseMessage.recording_id == Recording.id)
            .where(CaseMessage.case_id == case_id)
        )
        return {recording.id: recording for recording in await self.db.scalars(query)}

    async def stored_recording(self, case_id: int, public_id: str) -> Recording | None:
        """A stored recording of this case's caller; another case's or a pending one is None."""
        query = (
            select(Recording)
            .join(CaseMessage, CaseMessage.recording_id == Recording.id)
            .where(
                CaseMessage.case_id == case_id,
                Recording.public_id == public_id,
                Recording.status == RecordingStatus.STORED,
            )
        )
        return await self.db.scalar(query.limit(1))

    async def timeline(self, case_id: int) -> Sequence[AuditEntry]:
        """The case's audit entries, oldest first: its history as staff and caller made it."""
        query = select(AuditEntry).where(AuditEntry.case_id == case_id)
        return (await self.db.scalars(query.order_by(AuditEntry.at, AuditEntry.id))).all()

    async def messages(self, case_id: int) -> Sequence[CaseMessage]:
        """The caller's question and follow-ups, oldest first."""
        query = select(CaseMessage).where(CaseMessage.case_id == case_id)
        return (await self.db.scalars(query.order_by(CaseMessage.created_at, CaseMessage.id))).all()

    async def answers(self, case_id: int) -> Sequence[CaseAnswer]:
        """The staff's answers, oldest first."""
        query = select(CaseAnswer).where(CaseAnswer.case_id == case_id)
        return (await self.db.scalars(query.order_by(CaseAnswer.created_at, CaseAnswer.id))).all()

    async def notes(self, case_id: int) -> Sequence[CaseNote]:
        """Internal notes, oldest first."""
        query = select(CaseNote).where(CaseNote.case_id == case_id)
        return (await self.db.scalars(query.order_by(CaseNote.created_at, CaseNote.id))).all()

    async def answer(self, answer_id: int) -> CaseAnswer | None:
        """One answer by id."""
        return await self.db.get(CaseAnswer, answer_id)

    async def answer_by_audio(self, audio_id: str) -> CaseAnswer | None:
        """The voice answer stored under this file id."""
        return await self.db.scalar(select(CaseAnswer).where(CaseAnswer.audio_id == audio_id))

    async def unheard_for_caller(self, caller_id: int) -> Sequence[tuple[Case, CaseAnswer]]:
        """Answers the caller has not heard yet, oldest first, with their cases."""
        query = (
            select(Case, CaseAnswer)
            .join(CaseAnswer, CaseAnswer.case_id == Case.id)
            .where(Case.caller_id == caller_id, CaseAnswer.heard_at.is_(None))
            .order_by(CaseAnswer.created_at, CaseAnswer.id)
        )
        return [(case, answer) for case, answer in await self.db.execute(query)]

    async def latest_answer(self, case_id: int) -> CaseAnswer | None:
        """The newest answer of a case."""
        query = select(CaseAnswer).where(CaseAnswer.case_id == case_id)
        return await self.db.scalar(query.order_by(CaseAnswer.created_at.desc(), CaseAnswer.id.desc()))

    async def open_sms_cases(self, caller_id: int) -> int:
        """How many of the caller's cases still want an SMS answer (and so the stored number)."""
        query = select(func.count()).where(
            Case.caller_id == caller_id, Case.reply_by == ReplyBy.SMS, Case.status != CaseStatus.CLOSED
        )
        return int(await self.db.scalar(query) or 0)

    async def answered_idle_since(self, cutoff: datetime) -> Sequence[Case]:
        """Answered cases untouched since ``cutoff`` (no follow-up, no staff action)."""
        query = select(Case).where(Case.status == CaseStatus.ANSWERED, Case.updated_at < cutoff)
        return (await self.db.scalars(query.order_by(Case.id))).all()

    async def closed_before(self, cutoff: datetime) -> Sequence[Case]:
        """Closed cases past their retention."""
        query = select(Case).where(Case.status == CaseStatus.CLOSED, Case.closed_at < cutoff)
        return (await self.db.scalars(query.order_by(Case.id))).all()

    async def delete(self, case_ids: Sequence[int]) -> None:
        """Delete cases; their messages, answers and notes go with them (ON DELETE CASCADE).

        SQLite runs with foreign keys on (app.db.engine), so the cascade holds on both databases.
        """
        await self.db.execute(delete(Case).where(Case.id.in_(case_ids)))


def _conditions(given: QueueFilter) -> list[ColumnElement[bool]]:
    """The queue's filters as WHERE clauses."""
    conditions: list[ColumnElement[bool]] = []
    for column, value in (
        (Case.status, given.status),
        (Case.language, given.language),
        (Case.topic, given.topic),
        (Case.channel, given.channel),
    ):
        if value is not None:
            conditions.append(column == value)
    if given.older_than is not None:
        conditions.append(Case.created_at < given.older_than)
    if given.open_only:
        conditions.append(Case.status != CaseStatus.CLOSED)
    return conditions
