"""Count the two-way line's cases as they are opened, first answered and closed."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.cases.models import Case
from app.stats.counters import Item, People, count
from app.stats.dimensions import Service, known, local_day

RESPONSE_HOURS = (0.25, 0.5, 1, 2, 4, 8, 12, 24, 48, 72, 96, 120, 168, 336, 720)
"""Upper bounds of the time-to-first-answer buckets, in hours; slower answers fall in ``over``."""
OVER = "over"


def bucket(hours: float) -> str:
    """The name of the response-time bucket holding ``hours``, e.g. ``le_24`` (at most 24 hours)."""
    for bound in RESPONSE_HOURS:
        if hours <= bound:
            return f"le_{bound:g}"
    return OVER


def bound_of(name: str) -> float | None:
    """The upper bound in hours of a bucket name from ``bucket``; ``None`` for ``over``."""
    return None if name == OVER else float(name.removeprefix("le_"))


class CaseStats:
    """Adds case events to the rollups in the group the case was filed under; only stages changes."""

    def __init__(self, db: AsyncSession, zone: ZoneInfo) -> None:
        self.db = db
        self.zone = zone

    def opened(self, case: Case) -> None:
        """A case was opened."""
        self._count("cases_opened", case, case.created_at)

    def answered(self, case: Case, at: datetime) -> None:
        """A case got its first answer at ``at``: count it and how long it waited."""
        self._count("cases_answered", case, at)
        waited = (at - case.created_at).total_seconds() / 3600
        self._count("response_time", case, at, detail=bucket(waited))

    def closed(self, case: Case, at: datetime) -> None:
        """A case was closed (by a manager, or idle after its answer)."""
        self._count("cases_closed", case, at)

    def _count(self, metric: str, case: Case, at: datetime, detail: str = "") -> None:
        people = People(
            known(case.gender),
            known(case.age_band),
            known(case.language),
            case.channel,
            known(case.community),
        )
        item = Item(metric, case.topic, detail, Service.QUESTION_LINE.value)
        count(self.db, item, local_day(at, self.zone), people)
