"""Each package's published schema: questions are only ever added, so one package id serves every version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.upsert import insert_ignoring_conflicts
from app.floip.models import PublishedPackage, PublishedQuestion
from app.floip.repository import FloipRepository
from app.floip.surveys import QuestionSchema, survey_schemas
from app.flows.model import FlowDefinition


@dataclass(frozen=True)
class Version:
    """A package as published now: every question it ever had, when it began and when its schema grew."""

    questions: dict[str, QuestionSchema]
    created: datetime
    modified: datetime


class PackageCatalogue:
    """Records what each package has published (only flushes) and reads it back."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db
        self.answers = FloipRepository(db)

    async def version(self, flow: FlowDefinition, survey: str, now: datetime) -> Version:
        """The survey's schema: the questions published before, in their first form, then new ones."""
        # Spec, Results Versioning (option 2): a later version may add questions but never remove or
        # change one; a question dropped from the flow stays, so its answers stay described and served.
        key = (flow.id, survey)
        created = await self._created(key, now)
        published = await self._published(key)
        new = {qid: schema for qid, schema in survey_schemas(flow, survey).items() if qid not in published}
        if new:
            # The first questions are the original version, so `modified` equals `created` until one is added.
            await self._add(key, new, after=published, at=now if published else created)
            published = await self._published(key)  # a concurrent reader may have won a race
        ordered = sorted(published.values(), key=lambda question: question.position)
        modified = max((question.added_at for question in ordered), default=created)
        return Version({q.question_id: q.schema for q in ordered}, created, max(created, modified))

    async def _add(
        self,
        key: tuple[str, str],
        new: dict[str, QuestionSchema],
        *,
        after: dict[str, PublishedQuestion],
        at: datetime,
    ) -> None:
        """Publish new questions after those already published."""
        start = max((question.position for question in after.values()), default=-1) + 1
        for position, (question_id, schema) in enumerate(new.items(), start=start):
            values = {
                "flow_id": key[0],
                "survey": key[1],
                "question_id": question_id,
                "position": position,
                "schema": schema,
                "added_at": at,
            }
            await insert_ignoring_conflicts(
                self.db, PublishedQuestion, values, ["flow_id", "survey", "question_id"]
            )

    async def _created(self, key: tuple[str, str], now: datetime) -> datetime:
        """When the package was first known: its first (eligible) answer, or now if it has none yet."""
        known = await self.db.get(PublishedPackage, key)
        if known is not None:
            return known.created_at
        first = await self.answers.first_answer(*key)
        values = {"flow_id": key[0], "survey": key[1], "created_at": min(now, first or now)}
        await insert_ignoring_conflicts(self.db, PublishedPackage, values, ["flow_id", "survey"])
        # Read back rather than trust `values`: a concurrent first reader may have inserted first.
        statement = select(PublishedPackage.created_at).where(
            PublishedPackage.flow_id == key[0], PublishedPackage.survey == key[1]
        )
        created: datetime = (await self.db.execute(statement)).scalar_one()
        return created

    async def _published(self, key: tuple[str, str]) -> dict[str, PublishedQuestion]:
        statement = select(PublishedQuestion).where(
            PublishedQuestion.flow_id == key[0], PublishedQuestion.survey == key[1]
        )
        return {question.question_id: question for question in await self.db.scalars(statement)}
