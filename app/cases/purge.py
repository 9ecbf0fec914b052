"""Retention: closed cases past their time go, with their recordings and answers (`rimay purge`, daily)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cases.line import CODE_BUCKET, CODE_WINDOW
from app.cases.service import CaseService
from app.contacts.crypto import ContactCipher
from app.db.base import utcnow
from app.flows.model import FlowDefinition
from app.outbox.polling import PollingWorker
from app.settings import Settings
from app.throttle.service import ThrottleKeys, ThrottleService

log = logging.getLogger(__name__)
PURGE_EVERY = timedelta(days=1)


async def purge_now(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, flow: FlowDefinition, now: datetime
) -> int:
    """Purge what retention allows, in one transaction; how many cases went."""
    cipher = ContactCipher.from_secret(settings.contact_secret)
    async with sessions() as db:
        purged = await CaseService(db, settings, cipher, flow).purge(now)
        # Wrong case codes only count within their window; older rows are dead weight.
        throttle = ThrottleService(db, ThrottleKeys(settings.master_secret), clock=lambda: now)
        await throttle.prune(CODE_BUCKET, CODE_WINDOW)
        await db.commit()
    if purged:
        log.info("purged %s closed case(s) older than %s days", purged, settings.case_retention_days)
    return purged


class Purger(PollingWorker):
    """Runs the purge beside the outbox worker: at start, then once a day."""

    label = "purger"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        flow: FlowDefinition,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(sessionmaker, settings, clock=clock)
        self.flow = flow
        self.last_run: datetime | None = None

    async def run_once(self, batch: int = 1) -> int:
        """Purge if a day has passed since the last purge (or none ran yet); how many cases went."""
        now = self.clock()
        if self.last_run is not None and now - self.last_run < PURGE_EVERY:
            return 0
        self.last_run = now
        return await purge_now(self.sessionmaker, self.settings, self.flow, now)

    async def aclose(self) -> None:
        """Nothing to close: the purger opens no connection pool of its own."""
