"""What the `rimay worker` and `rimay outbox` commands do, apart from printing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.db.engine import make_async_engine, make_sessionmaker
from app.outbox.models import MessageStatus
from app.outbox.polling import ClientFactory
from app.outbox.repository import OutboxRepository
from app.outbox.twilio_http import client_factory as default_client_factory
from app.outbox.worker import OutboxWorker
from app.privacy.masking import mask_phone_numbers
from app.recordings.fetcher import RecordingFetcher
from app.settings import Settings


@dataclass(frozen=True)
class OutboxLine:
    """One row as an operator sees it: never a number or a message body."""

    id: int
    kind: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime

    def render(self) -> str:
        """A fixed-width line for the terminal."""
        error = mask_phone_numbers(self.last_error or "")
        return (
            f"{self.id:>8}  {self.kind:<4}  {self.status:<11}  {self.attempts:>3}  "
            f"{self.created_at:%Y-%m-%d %H:%M}  {error}"
        ).rstrip()


HEADER = f"{'id':>8}  {'kind':<4}  {'status':<11}  {'try':>3}  {'created (UTC)':<16}  last error"


@asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_async_engine(settings.sqlalchemy_url, pool_pre_ping=True)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def run_worker(
    settings: Settings,
    *,
    once: bool,
    poll: float,
    batch: int = 20,
    client_factory: ClientFactory = default_client_factory,
) -> int:
    """Run one batch of messages and recordings (how many rows claimed) or poll until a signal (0)."""
    async with _sessions(settings) as sessions:
        worker = OutboxWorker(sessions, settings, client_factory)
        fetcher = RecordingFetcher(sessions, settings, client_factory)
        if not once:
            # The fetcher polls beside the outbox; the worker owns the signal handlers, so it stops both.
            fetching = asyncio.create_task(fetcher.run_forever(poll, batch))
            try:
                await worker.run_forever(poll, batch)
            finally:
                fetcher.stop()
                await fetching
            return 0
        try:
            return await worker.run_once(batch) + await fetcher.run_once(batch)
        finally:
            await worker.aclose()
            await fetcher.aclose()


async def list_rows(settings: Settings, status: MessageStatus | None, limit: int) -> list[OutboxLine]:
    """The newest rows, optionally of one status."""
    async with _sessions(settings) as sessions, sessions() as db:
        rows = await OutboxRepository(db).listing(status, limit)
        return [
            OutboxLine(row.id, row.kind, row.status, row.attempts, row.last_error, row.created_at)
            for row in rows
        ]


async def retry_row(settings: Settings, message_id: int) -> bool:
    """Put a failed row back in the queue; False unless it was failed."""
    async with _sessions(settings) as sessions, sessions() as db, db.begin():
        return await OutboxRepository(db).requeue(message_id, utcnow())
