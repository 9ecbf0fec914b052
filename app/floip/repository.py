"""Every FLOIP query: a package's answers, joined to their runs, read by row id (keyset)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Final

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.floip.responses import StoredAnswer
from app.survey.models import Answer, SurveyRun

INELIGIBLE: Final = "ineligible"
"""The status of a run closed because the caller is under 18: none of its answers is a result."""


def _of_survey(flow_id: str, survey: str) -> ColumnElement[bool]:
    # A minor's answers (their gender, their age band) never reach partners, whatever the question.
    return and_(SurveyRun.flow_id == flow_id, SurveyRun.survey == survey, SurveyRun.status != INELIGIBLE)


class FloipRepository:
    """Reads answers for export; never writes."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def first_answer(self, flow_id: str, survey: str) -> datetime | None:
        """When the survey's first exportable answer was given (None: no answer yet)."""
        statement = (
            select(func.min(Answer.created_at))
            .join(SurveyRun, SurveyRun.id == Answer.run_id)
            .where(_of_survey(flow_id, survey))
        )
        first: datetime | None = await self.db.scalar(statement)
        return first

    async def answers(
        self,
        flow_id: str,
        survey: str,
        question_ids: Collection[str],
        *,
        after: int,
        start: datetime | None,
        end: datetime | None,
        limit: int,
    ) -> list[StoredAnswer]:
        """Up to ``limit`` answers with a row id above ``after``, recorded in (start, end], by row id."""
        # Only the package's questions: the descriptor must describe every row it serves.
        conditions = [
            _of_survey(flow_id, survey),
            Answer.question_id.in_(list(question_ids)),
            Answer.id > after,
        ]
        if start is not None:
            conditions.append(Answer.created_at > start)
        if end is not None:
            conditions.append(Answer.created_at <= end)
        statement = (
            select(
                Answer.id,
                Answer.created_at,
                Answer.question_id,
                Answer.value,
                Answer.channel,
                Answer.language,
                SurveyRun.caller_id,
                SurveyRun.public_id,
                Answer.text,
            )
            .join(SurveyRun, SurveyRun.id == Answer.run_id)
            .where(*conditions)
            .order_by(Answer.id)
            .limit(limit)
        )
        return [StoredAnswer(*row) for row in await self.db.execute(statement)]
