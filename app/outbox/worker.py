"""The outbox worker: claim due rows, send each through Twilio outside any transaction, record the outcome.

Exactly once: a row is marked `sending` (and committed) before its REST call. If the worker dies before
recording the outcome, nobody knows whether Twilio took the message, so the row is never re-sent blindly:
once its claim is older than the lease (RIMAY_OUTBOX_LEASE_SECONDS) it is marked `failed` with
"outcome unknown after worker crash", for an operator to check and `rimay outbox retry` if needed.

Twilio takes no idempotency key. So when an attempt may have reached Twilio without our seeing its answer
(a read timeout, a dropped connection, a 5xx), the row remembers when that attempt started. Before sending
it again, the worker lists the number's recent messages (or calls) at Twilio and records a match as the
send instead of sending twice. If that lookup fails, nothing is sent: the row waits like any retry.

A call-back that fails for good (refused, out of tries, or lost in a crash) drops its call-back consent at
once: the number was kept only for that call, so it must not wait for the window to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import AuditService
from app.contacts.crypto import ContactCipher, ContactUnreadable
from app.contacts.models import ContactPurpose
from app.contacts.service import ContactService
from app.db.base import utcnow
from app.outbox.models import MessageKind, MessageStatus, OutboxMessage
from app.outbox.polling import ClientFactory, PollingWorker
from app.outbox.repository import Job, OutboxRepository, short_error
from app.outbox.retry import SendFailure, classify
from app.outbox.sender import TwilioSender
from app.outbox.twilio_http import client_factory as default_client_factory
from app.settings import Settings

log = logging.getLogger(__name__)
STALE_REASON = "outcome unknown after worker crash"
AMBIGUOUS_SETTLE = timedelta(seconds=60)
"""After an attempt whose answer was lost, Twilio may still be working on it: ask only after this wait."""


class OutboxWorker(PollingWorker):
    """Sends outbox rows; several may run at once (PostgreSQL), each claiming rows the others skip."""

    label = "outbox worker"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        client_factory: ClientFactory = default_client_factory,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(sessionmaker, settings, client_factory, clock=clock, rng=rng)
        self.cipher = ContactCipher.from_secret(settings.contact_secret)
        self._sender: TwilioSender | None = None

    async def run_once(self, batch: int = 20) -> int:
        """Send what is due now, up to ``batch`` rows; how many rows were claimed."""
        sender = self._twilio()
        await self._housekeeping()
        jobs = await self._claim(batch)
        for job in jobs:
            await self._deliver(sender, job)
        return len(jobs)

    async def run_forever(self, poll_interval: float = 2.0, batch: int = 20) -> None:
        """Poll until SIGINT/SIGTERM or `stop()`; a batch in flight is finished, never cut off mid-send."""
        loop = asyncio.get_running_loop()
        installed = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows / other threads
                loop.add_signal_handler(signum, self.stop)
                installed.append(signum)
        log.info("outbox worker started (poll every %ss, batches of %s)", poll_interval, batch)
        try:
            await self.poll(poll_interval, batch)
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            await self.aclose()
            log.info("outbox worker stopped")

    async def aclose(self) -> None:
        """Close the Twilio connection pool."""
        if self._sender is not None:
            close = getattr(self._sender.client.http_client, "aclose", None)
            if close is not None:
                await close()
            self._sender = None

    def _twilio(self) -> TwilioSender:
        if self._sender is None:
            self._sender = TwilioSender(self.client_factory(self.settings), self.settings)
        return self._sender

    async def _housekeeping(self) -> None:
        """Fail rows abandoned mid-send, and delete contacts past their deletion time."""
        now = self.clock()
        async with self.sessionmaker() as db, db.begin():
            stale = await OutboxRepository(db).fail_stale(now - self.lease, now, STALE_REASON)
            forgotten = await self._forget_stale_callbacks(db, stale)
            await ContactService(db, self.cipher, clock=self.clock).purge_expired(now)
        for message_id in stale:
            if message_id in forgotten:
                log.error(
                    "outbox %s: %s; marked failed, not re-sent; the call-back number was deleted, "
                    "so it cannot be retried (check Twilio)",
                    message_id,
                    STALE_REASON,
                )
                continue
            log.error(
                "outbox %s: %s; marked failed, not re-sent (check Twilio, then `rimay outbox retry %s`)",
                message_id,
                STALE_REASON,
                message_id,
            )

    async def _forget_stale_callbacks(self, db: AsyncSession, stale: list[int]) -> set[int]:
        """Drop the call-back consent behind each stale call row; the ids of those rows."""
        forgotten = set()
        for message_id in stale:
            row = await db.get(OutboxMessage, message_id)
            if row is not None and await self._forget_callback(db, row.kind, row.purpose, row.caller_id):
                forgotten.add(message_id)
        return forgotten

    async def _forget_callback(self, db: AsyncSession, kind: str, purpose: str, caller_id: int) -> bool:
        """After a call-back's last attempt (placed or failed for good) its number is not needed."""
        if kind != MessageKind.CALL or purpose != ContactPurpose.CALLBACK:
            return False
        # drop_purpose keeps the number if another purpose (news, SMS replies) still needs it.
        await ContactService(db, self.cipher, clock=self.clock).drop_purpose(
            caller_id, ContactPurpose.CALLBACK
        )
        return True

    async def _claim(self, batch: int) -> list[Job]:
        async with self.sessionmaker() as db, db.begin():
            return await OutboxRepository(db).claim(self.clock(), batch)

    async def _deliver(self, sender: TwilioSender, job: Job) -> None:
        number = await self._recipient(job)
        if number is None:
            return
        since = job.ambiguous_since
        if since is not None and await self._settled(sender, job, number, since):
            return
        try:
            sid = await sender.send(job, number)
        except Exception as error:
            await self._failed(job, error)
        else:
            await self._sent(job, sid)

    async def _settled(self, sender: TwilioSender, job: Job, number: str, since: datetime) -> bool:
        """An attempt since ``since`` may have reached Twilio: True (send nothing now) if it did or unsure."""
        try:
            found = await sender.find(job, number, since)
        except Exception as error:
            # Not knowing is no licence to send: the row waits and asks again (an attempt used).
            await self._failed(job, error, lookup=True)
            return True
        async with self.sessionmaker() as db:
            taken = await OutboxRepository(db).recorded_sids(found)
            recorded = await db.scalar(select(OutboxMessage.provider_sid).where(OutboxMessage.id == job.id))
        # A message another row already holds is that row's (same text to the same caller).
        ours = [sid for sid in found if taken.get(sid, job.id) == job.id]
        if len(ours) > 1:
            log.warning(
                "outbox %s: Twilio holds %s messages for it; the oldest is recorded", job.id, len(ours)
            )
        if ours:
            await self._sent(job, ours[0], how="found at Twilio after a lost answer")
            return True
        if recorded is not None:
            # A delivery report recorded the lost attempt while Twilio's list did not show it yet.
            log.info("outbox %s: already recorded by a delivery report; not sent again", job.id)
            return True
        log.info("outbox %s: Twilio has no message from the lost attempt; sending again", job.id)
        return False

    async def _recipient(self, job: Job) -> str | None:
        """The number, decrypted in memory just before sending; None (row closed) if not allowed now."""
        async with self.sessionmaker() as db, db.begin():
            rows = OutboxRepository(db)
            try:
                number, reason = await self._number(db, job)
            except ContactUnreadable:
                log.exception("outbox %s: contact cannot be decrypted (RIMAY_CONTACT_KEY changed?)", job.id)
                await rows.finish(job.id, MessageStatus.FAILED, self.clock(), error="contact unreadable")
                return None
            if number is None:
                await rows.finish(job.id, MessageStatus.CANCELLED, self.clock(), error=reason)
        if number is None:
            log.info("outbox %s: cancelled: %s", job.id, reason)
        return number

    async def _number(self, db: AsyncSession, job: Job) -> tuple[str | None, str]:
        """Consent and opt-out are checked again: either may have changed since the row was queued."""
        if await OutboxRepository(db).caller_opted_out(job.caller_id, lock=False) is not False:
            return None, "caller opted out"
        contacts = ContactService(db, self.cipher, clock=self.clock)
        number = await contacts.number_for(job.caller_id, ContactPurpose(job.purpose))
        return number, f"no contact consented to {job.purpose}"

    async def _sent(self, job: Job, sid: str, how: str = "handed to Twilio") -> None:
        async with self.sessionmaker() as db, db.begin():
            now = self.clock()
            # FAILED too: a slow send outlived its lease and was failed as unknown; now it is known.
            expected = (MessageStatus.SENDING, MessageStatus.FAILED)
            rows = OutboxRepository(db)
            finished = await rows.finish(job.id, MessageStatus.SENT, now, sid=sid, expected=expected)
            await self._forget_callback(db, job.kind, job.purpose, job.caller_id)
            if finished and job.case_id is not None:
                await AuditService(db, clock=self.clock).record(
                    "system", "answer_sms_sent", case_id=job.case_id
                )
        if not finished:
            # A delivery report got here first (it knows more, e.g. delivered): it is left as it is.
            log.info("outbox %s: %s %s; its outcome was already recorded", job.id, job.kind, how)
            return
        log.info("outbox %s: %s %s (attempt %s)", job.id, job.kind, how, job.attempts)

    async def _failed(self, job: Job, error: Exception, *, lookup: bool = False) -> None:
        failure = classify(error)
        now = self.clock()
        what = "checking Twilio: " if lookup else ""
        reason = short_error(what + (failure.reason if failure else f"unexpected {type(error).__name__}"))
        # A lookup creates nothing. A send that may have reached Twilio (or failed in a way we do not
        # know) marks the row: before it is sent again, the worker asks Twilio whether it took it.
        ambiguous = not lookup and (failure is None or failure.ambiguous)
        status, retry_at = MessageStatus.FAILED, None
        if failure is not None and failure.retryable and job.attempts < self.settings.outbox_max_attempts:
            status, retry_at = MessageStatus.PENDING, now + self._delay(job.attempts, ambiguous)
        since = (job.claimed_at or now) if ambiguous else None
        async with self.sessionmaker() as db, db.begin():
            rows = OutboxRepository(db)
            finished = await rows.finish(
                job.id, status, now, error=reason, retry_at=retry_at, ambiguous_since=since
            )
            if finished and status == MessageStatus.FAILED:
                await self._forget_callback(db, job.kind, job.purpose, job.caller_id)
        self._log_failure(job, failure, error, reason, retry_at)

    def _delay(self, attempt: int, ambiguous: bool) -> timedelta:
        """Backoff; after a lost answer at least AMBIGUOUS_SETTLE, so Twilio has finished the request."""
        delay = self.backoff.delay(attempt)
        return max(delay, AMBIGUOUS_SETTLE) if ambiguous else delay

    def _log_failure(
        self,
        job: Job,
        failure: SendFailure | None,
        error: Exception,
        reason: str,
        retry_at: datetime | None,
    ) -> None:
        if retry_at is not None:
            log.warning(
                "outbox %s: attempt %s failed (%s); retrying at %s", job.id, job.attempts, reason, retry_at
            )
        elif failure is None:
            log.error("outbox %s: unexpected error; marked failed, not retried", job.id, exc_info=error)
        else:
            log.error("outbox %s: failed after %s attempt(s): %s", job.id, job.attempts, reason)
