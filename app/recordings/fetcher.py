"""The recording fetcher: download each pending recording, store it privately, then delete it at Twilio.

Order matters for privacy and for safety: the file is written (atomically) and that fact committed before
Twilio's copy is deleted, so a failure in between never loses the recording and never downloads it twice.
A claim is a lease (``next_attempt_at`` moved past RIMAY_OUTBOX_LEASE_SECONDS): a fetcher that dies
leaves its rows due again afterwards, which is safe because fetching and deleting are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from twilio.base.exceptions import TwilioRestException

from app.audit.service import AuditService
from app.cases.models import CaseMessage
from app.db.base import utcnow
from app.outbox.polling import ClientFactory, PollingWorker
from app.outbox.retry import SendFailure, classify
from app.outbox.twilio_http import DEFAULT_TIMEOUT
from app.outbox.twilio_http import client_factory as default_client_factory
from app.recordings.repository import FetchJob, RecordingRepository
from app.recordings.service import recording_path
from app.recordings.storage import write_private
from app.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_MEDIA_TYPE = "audio/mpeg"


class DownloadFailed(Exception):
    """Twilio answered the media request with something other than 200."""

    def __init__(self, status: int) -> None:
        super().__init__(f"download HTTP {status}")
        self.status = status


def failure_of(error: Exception) -> SendFailure | None:
    """Like the outbox's `classify`, plus the download's own errors; reasons never hold a URL."""
    if isinstance(error, DownloadFailed):
        return SendFailure(error.status == 429 or error.status >= 500, str(error))
    if isinstance(error, httpx.TransportError):  # timeouts included; its text may quote the URL
        return SendFailure(True, f"{type(error).__name__} downloading")
    if isinstance(error, OSError):  # a full or read-only disk may be fixed by the operator
        return SendFailure(True, f"storage error: {error.strerror or type(error).__name__}")
    return classify(error)


class RecordingFetcher(PollingWorker):
    """Moves recordings from Twilio to the data directory; several may run at once (PostgreSQL)."""

    label = "recording fetcher"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        client_factory: ClientFactory = default_client_factory,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(sessionmaker, settings, client_factory, clock=clock, rng=rng)
        self._http = http
        self._owns_http = http is None
        self._client: Any = None

    async def run_once(self, batch: int = 10) -> int:
        """Fetch what is due now, up to ``batch`` recordings; how many rows were claimed."""
        client = self._twilio()
        async with self.sessionmaker() as db, db.begin():
            now = self.clock()
            jobs = await RecordingRepository(db).claim(now, now + self.lease, batch)
        for job in jobs:
            await self._fetch(client, job)
        return len(jobs)

    async def run_forever(self, poll_interval: float = 2.0, batch: int = 10) -> None:
        """Poll until `stop()`; a recording in flight is finished first."""
        try:
            await self.poll(poll_interval, batch)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pools this fetcher opened."""
        if self._client is not None:
            close = getattr(self._client.http_client, "aclose", None)
            if close is not None:
                await close()
            self._client = None
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None

    def _twilio(self) -> Any:
        if self._client is None:
            self._client = self.client_factory(self.settings)
        return self._client

    def _downloader(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)
        return self._http

    async def _fetch(self, client: Any, job: FetchJob) -> None:
        try:
            if not (job.downloaded and recording_path(self.settings, job.public_id).exists()):
                await self._download(client, job)
            await self._delete_remote(client, job)
        except Exception as error:
            await self._failed(job, error)
            return
        async with self.sessionmaker() as db, db.begin():
            await RecordingRepository(db).stored(job.id, self.clock())
            # A caller's question: its case's history says when the recording could be listened to.
            cases = await db.scalars(select(CaseMessage.case_id).where(CaseMessage.recording_id == job.id))
            for case_id in cases.all():
                await AuditService(db, clock=self.clock).record("system", "recording_stored", case_id=case_id)
        log.info("recording %s: stored and deleted at Twilio (attempt %s)", job.id, job.attempts)

    async def _download(self, client: Any, job: FetchJob) -> None:
        """GET the MP3 (Twilio redirects to its storage host; httpx drops the credentials on the way)."""
        response = await self._downloader().get(
            job.source_url + ".mp3", auth=(client.username, client.password), follow_redirects=True
        )
        if response.status_code != 200:
            raise DownloadFailed(response.status_code)
        path = recording_path(self.settings, job.public_id)
        await asyncio.to_thread(write_private, path, response.content)
        media_type = response.headers.get("content-type", DEFAULT_MEDIA_TYPE).split(";")[0].strip()
        async with self.sessionmaker() as db, db.begin():
            await RecordingRepository(db).downloaded(
                job.id, self.clock(), len(response.content), media_type or DEFAULT_MEDIA_TYPE
            )

    async def _delete_remote(self, client: Any, job: FetchJob) -> None:
        """Delete Twilio's copy; a 404 means an earlier attempt (or an operator) already did."""
        try:
            await client.recordings(job.provider_sid).delete_async()
        except TwilioRestException as error:
            if int(error.status) != 404:
                raise

    async def _failed(self, job: FetchJob, error: Exception) -> None:
        failure = failure_of(error)
        reason = failure.reason if failure else f"unexpected {type(error).__name__}"
        retry_at = None
        if failure is not None and failure.retryable and job.attempts < self.settings.outbox_max_attempts:
            retry_at = self.clock() + self.backoff.delay(job.attempts)
        async with self.sessionmaker() as db, db.begin():
            await RecordingRepository(db).failed(job.id, reason, retry_at)
        if retry_at is not None:
            log.warning("recording %s: attempt %s failed; retrying at %s", job.id, job.attempts, retry_at)
        else:
            # The row id only: the exception's text or traceback may quote a URL.
            log.error("recording %s: failed after %s attempt(s); not retried", job.id, job.attempts)
