"""What the `rimay worker` and `rimay outbox` commands do, apart from printing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cases.purge import Purger, purge_now
from app.contacts.models import ContactPurpose
from app.contacts.repository import ContactRepository
from app.db.base import utcnow
from app.db.engine import make_async_engine, make_sessionmaker
from app.flows.loader import load_flows
from app.outbox.models import MessageKind, MessageStatus, OutboxMessage
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
        purger = Purger(sessions, settings, load_flows(settings.flows_dir)[settings.default_flow])
        if not once:
            # The fetcher and the daily purge poll beside the outbox; the worker owns the signal
            # handlers, so it stops them all.
            fetching = asyncio.create_task(fetcher.run_forever(poll, batch))
            purging = asyncio.create_task(purger.poll(poll, 1))
            try:
                await worker.run_forever(poll, batch)
            finally:
                fetcher.stop()
                purger.stop()
                await asyncio.gather(fetching, purging)
            return 0
        try:
            return await worker.run_once(batch) + await fetcher.run_once(batch)
        finally:
            await worker.aclose()
            await fetcher.aclose()


async def purge_cases(settings: Settings) -> int:
    """What `rimay purge` does (and the worker, daily): closed cases past retention go."""
    async with _sessions(settings) as sessions:
        flow = load_flows(settings.flows_dir)[settings.default_flow]
        return await purge_now(sessions, settings, flow, utcnow())


async def list_rows(settings: Settings, status: MessageStatus | None, limit: int) -> list[OutboxLine]:
    """The newest rows, optionally of one status."""
    async with _sessions(settings) as sessions, sessions() as db:
        rows = await OutboxRepository(db).listing(status, limit)
        return [
            OutboxLine(row.id, row.kind, row.status, row.attempts, row.last_error, row.created_at)
            for row in rows
        ]


class Retry(StrEnum):
    """What `rimay outbox retry` did with a row."""

    QUEUED = "queued"
    NOT_FOUND = "not found"
    NOT_FAILED = "not failed"
    NUMBER_GONE = "number gone"
    """A failed call-back: the worker deleted its number, so a retry could never be placed."""


async def retry_row(settings: Settings, message_id: int) -> Retry:
    """Put a failed row back in the queue with fresh attempts, unless it could never be sent."""
    async with _sessions(settings) as sessions, sessions() as db, db.begin():
        row = await db.get(OutboxMessage, message_id)
        if row is None:
            return Retry.NOT_FOUND
        if row.status != MessageStatus.FAILED:
            return Retry.NOT_FAILED
        now = utcnow()
        if row.kind == MessageKind.CALL:
            contact = await ContactRepository(db).get(row.caller_id)
            if contact is None or not contact.usable(ContactPurpose.CALLBACK, now):
                return Retry.NUMBER_GONE
        # requeue checks the status again: another operator may have retried the row meanwhile.
        queued = await OutboxRepository(db).requeue(message_id, now)
        return Retry.QUEUED if queued else Retry.NOT_FAILED
