"""Subscribe callers to news and fan a broadcast out to subscribers through the outbox."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.broadcasts.models import Broadcast, Subscription
from app.contacts.models import ContactPurpose
from app.contacts.service import ContactService
from app.db.base import utcnow
from app.db.upsert import insert_ignoring_conflicts
from app.errors import RimayError
from app.outbox.models import OutboxMessage
from app.outbox.service import Outbox
from app.sms.segments import capacity, encoding, fits, length_units
from app.survey.models import SurveyRun

log = logging.getLogger(__name__)


class BroadcastTooLong(RimayError):
    """A broadcast text would not fit in two SMS segments."""

    code = "broadcast_too_long"


@dataclass(frozen=True)
class QueuedBroadcast:
    """A broadcast just created: how many messages were queued, and who got nothing and why."""

    id: int
    recipients: int
    left_out: dict[str, int]
    """Subscribers per language the broadcast has no text for (they are sent nothing)."""


@dataclass(frozen=True)
class BroadcastReport:
    """A broadcast with its delivery counts, for operators."""

    id: int
    community: str | None
    languages: list[str]
    recipients: int
    counts: dict[str, int]


class BroadcastService:
    """Subscriptions and broadcasts; like every service it only flushes, the caller commits."""

    def __init__(self, db: AsyncSession, contacts: ContactService, outbox: Outbox) -> None:
        self.db = db
        self.contacts = contacts
        self.outbox = outbox

    async def subscribe(self, caller_id: int, e164: str, language: str, channel: str) -> None:
        """Subscribe (or change language): the number is kept encrypted, with consent for news only."""
        await self.contacts.remember(caller_id, e164, ContactPurpose.NEWS)
        await insert_ignoring_conflicts(
            self.db,
            Subscription,
            {"caller_id": caller_id, "language": language, "channel": channel, "created_at": utcnow()},
            ["caller_id"],
        )
        subscription = await self.db.scalar(select(Subscription).where(Subscription.caller_id == caller_id))
        if subscription is not None:
            subscription.language = language
            # The community the caller gave in their latest survey profile, if any.
            subscription.community = await self.db.scalar(
                select(SurveyRun.community)
                .where(SurveyRun.caller_id == caller_id, SurveyRun.community.is_not(None))
                .order_by(SurveyRun.id.desc())
                .limit(1)
            )
        log.info("caller %s subscribed to news in %s by %s", caller_id, language, channel)

    async def unsubscribe(self, caller_id: int) -> None:
        """Forget a caller's subscription (on opt-out)."""
        await self.db.execute(delete(Subscription).where(Subscription.caller_id == caller_id))

    async def create(self, texts: dict[str, str], community: str | None = None) -> QueuedBroadcast:
        """Queue the news for each subscriber (of the community, if given) with a text in their language."""
        for language, text in texts.items():
            if not text.strip() or not fits(text):
                raise BroadcastTooLong(
                    f"the {language!r} text must be 1 to {capacity(encoding(text))} characters "
                    f"(2 SMS segments); it has {length_units(text)}"
                )
        broadcast = Broadcast(texts=texts, community=community, created_at=utcnow())
        self.db.add(broadcast)
        await self.db.flush()
        query = select(Subscription).where(Subscription.language.in_(texts))
        if community is not None:
            query = query.where(Subscription.community == community)
        queued = 0
        for subscription in await self.db.scalars(query.order_by(Subscription.id)):
            message = await self.outbox.enqueue_sms(
                subscription.caller_id,
                texts[subscription.language],
                purpose=ContactPurpose.NEWS,
                broadcast_id=broadcast.id,
            )
            queued += message is not None
        broadcast.recipients = queued
        left_out = await self._left_out(texts, community)
        log.info("broadcast %s queued for %s subscriber(s)", broadcast.id, queued)
        for language, count in left_out.items():
            log.warning(
                "broadcast %s: %s subscriber(s) in %s left out: no text", broadcast.id, count, language
            )
        return QueuedBroadcast(broadcast.id, queued, left_out)

    async def _left_out(self, texts: dict[str, str], community: str | None) -> dict[str, int]:
        """Subscribers (of the community, if given) per language that has no text in this broadcast."""
        query = (
            select(Subscription.language, func.count())
            .where(Subscription.language.not_in(texts))
            .group_by(Subscription.language)
        )
        if community is not None:
            query = query.where(Subscription.community == community)
        return {str(language): int(count) for language, count in await self.db.execute(query)}

    async def reports(self, limit: int = 20) -> list[BroadcastReport]:
        """The latest broadcasts with sent, delivered and failed counts from the outbox."""
        broadcasts = list(await self.db.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit)))
        rows = await self.db.execute(
            select(OutboxMessage.broadcast_id, OutboxMessage.status, func.count())
            .where(OutboxMessage.broadcast_id.in_([b.id for b in broadcasts]))
            .group_by(OutboxMessage.broadcast_id, OutboxMessage.status)
        )
        counts: dict[int, dict[str, int]] = {}
        for broadcast_id, status, count in rows:
            if broadcast_id is not None:
                counts.setdefault(broadcast_id, {})[str(status)] = int(count)
        return [
            BroadcastReport(b.id, b.community, sorted(b.texts), b.recipients, counts.get(b.id, {}))
            for b in broadcasts
        ]
