"""Admission control: a worker works on a few webhooks at once; the rest wait their turn, briefly.

When the radio announces the hotline, webhooks arrive faster than the CPUs answer them. Worked on all at
once, every one of them gets slower, and many pass the webhook deadline: work thrown away, and callers
hung up on. With a fixed number of slots the admitted webhooks finish quickly and the others queue in
order. A webhook that waits longer than the queue allows gets the apology (Twilio waits 15 s at most).

While the database is down (the last few webhooks in a row ended at the deadline or on a database error),
waiting webhooks are answered with the apology at once instead of queueing behind doomed ones; admitted
ones keep trying, and the first that succeeds reopens the queue. One slow webhook among good ones (a busy
SQLite file) is not an outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from app.metrics import TURNED_AWAY

DOWN_AFTER = 3
"""Webhooks in a row that found the database unavailable before it counts as down (fewer with fewer slots:
then that many are all there are)."""


class Admission:
    """At most ``slots`` webhooks in progress in this process; the others wait up to ``wait_seconds``."""

    def __init__(self, slots: int, wait_seconds: float) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._wait_seconds = wait_seconds
        self._down = asyncio.Event()
        self._down_after = min(slots, DOWN_AFTER)
        self._failures = 0

    @property
    def database_down(self) -> bool:
        """Whether the last webhooks to finish all found the database unavailable."""
        return self._down.is_set()

    def report(self, *, database_down: bool) -> None:
        """How a webhook ended: with the database unavailable, or not."""
        if not database_down:
            self._failures = 0
            self._down.clear()
            return
        self._failures += 1
        if self._failures >= self._down_after:
            self._down.set()

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[bool]:
        """A slot for one webhook while inside; False when it may not be worked on (answer the apology)."""
        admitted = await self._enter()
        try:
            yield admitted
        finally:
            if admitted:
                self._slots.release()

    async def _enter(self) -> bool:
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: taken without waiting
            return True
        if self._down.is_set():
            TURNED_AWAY.labels("database").inc()
            return False
        slot = asyncio.ensure_future(self._slots.acquire())
        down = asyncio.ensure_future(self._down.wait())
        try:
            await asyncio.wait({slot, down}, timeout=self._wait_seconds, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the request itself was cancelled (the server is stopping)
            if self._stop_waiting(slot, down):
                self._slots.release()
            raise
        admitted = self._stop_waiting(slot, down)
        if admitted and not self._down.is_set():
            return True
        if admitted:
            # Freed by a webhook that just found the database down: waiting for it was in vain. The slot
            # goes to the next arrival, which will try the database (it may be back by then).
            self._slots.release()
        TURNED_AWAY.labels("database" if self._down.is_set() else "busy").inc()
        return False

    @staticmethod
    def _stop_waiting(slot: asyncio.Future[Literal[True]], down: asyncio.Future[Literal[True]]) -> bool:
        """Stop waiting; whether the slot was taken (then the caller must use or release it)."""
        down.cancel()
        if slot.done():
            return not slot.cancelled()
        # If the slot is granted before this cancellation lands, acquire() passes it to the next waiter.
        slot.cancel()
        return False
