"""What background workers share: clock, backoff, lease, and a polling loop that survives errors."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.outbox.retry import Backoff
from app.outbox.twilio_http import client_factory as default_client_factory
from app.settings import Settings

log = logging.getLogger(__name__)
ClientFactory = Callable[[Settings], Any]
"""Builds a twilio `Client` whose http client is asynchronous (see `twilio_http.client_factory`)."""


class PollingWorker(abc.ABC):
    """Claims due rows in batches until stopped; several may run at once, on PostgreSQL."""

    label = "worker"
    """How the worker names itself in the log."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        client_factory: ClientFactory = default_client_factory,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.client_factory = client_factory
        self.clock = clock
        self.backoff = Backoff(rng=rng or random.Random())  # noqa: S311 - jitter, not secrecy
        self.lease = timedelta(seconds=settings.outbox_lease_seconds)
        self._stopping = asyncio.Event()

    @abc.abstractmethod
    async def run_once(self, batch: int) -> int:
        """Handle what is due now, up to ``batch`` rows; how many rows were claimed."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the connection pools this worker opened."""

    def stop(self) -> None:
        """Ask the polling loop to return after the current batch."""
        self._stopping.set()

    async def poll(self, poll_interval: float, batch: int) -> None:
        """Run batches until `stop()`: at once while full batches come, else after ``poll_interval``."""
        while not self._stopping.is_set():
            claimed = await self._run_safely(batch)
            if claimed < batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), poll_interval)

    async def _run_safely(self, batch: int) -> int:
        try:
            return await self.run_once(batch)
        except Exception:
            # A database hiccup must not kill the worker; claimed rows are recovered by their lease.
            log.exception("%s: a run failed; trying again after the poll interval", self.label)
            return 0
