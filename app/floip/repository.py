"""Every FLOIP query: a package's answers, joined to their runs, read by row id (keyset)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.floip.responses import StoredAnswer
from app.survey.models import Answer, SurveyRun


def _of_survey(flow_id: str, survey: str, question_ids: Collection[str]) -> ColumnElement[bool]:
    # Only the flow's current questions: the descriptor must describe every row it serves.
    return and_(
        SurveyRun.flow_id == flow_id,
        SurveyRun.survey == survey,
        Answer.question_id.in_(list(question_ids)),
    )


class FloipRepository:
    """Reads answers for export; never writes."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def span(
        self, flow_id: str, survey: str, question_ids: Collection[str]
    ) -> tuple[datetime | None, datetime | None]:
        """When the survey's first and latest answers were given."""
        statement = (
            select(func.min(Answer.created_at), func.max(Answer.created_at))
            .join(SurveyRun, SurveyRun.id == Answer.run_id)
            .where(_of_survey(flow_id, survey, question_ids))
        )
        first, last = (await self.db.execute(statement)).one()
        return first, last

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
        conditions = [_of_survey(flow_id, survey, question_ids), Answer.id > after]
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
