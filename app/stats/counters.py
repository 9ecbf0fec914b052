"""Counter changes gathered during a transaction and written in one sorted upsert just before it commits.

Writing them last, in key order, means two webhooks that touch the same counters lock them in the same
order, so PostgreSQL never sees a deadlock; and a transaction that rolls back (a redelivered webhook that
lost the race) drops its changes with it.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.db.base import table_of
from app.stats.dimensions import Grain, period_start
from app.stats.models import StatsCount

PENDING = "rimay.stats.pending"


class People(NamedTuple):
    """The dimensions describing who and how: one group of people."""

    gender: str
    age_band: str
    language: str
    channel: str
    community: str


class Item(NamedTuple):
    """What is counted, before it is placed in a period and a group."""

    metric: str
    subject: str = ""
    detail: str = ""
    service: str = ""

    def encode(self) -> str:
        """The item as one string, a key of a session's stored snapshot."""
        return "\x1f".join(self)

    @classmethod
    def decode(cls, text: str) -> Item:
        """The item from ``encode``."""
        metric, subject, detail, service = text.split("\x1f")
        return cls(metric, subject, detail, service)


CounterKey = tuple[str, str, date, str, str, str, str, str, str, str, str]


def counter_key(item: Item, grain: Grain, start: date, people: People) -> CounterKey:
    """The primary key of a counter row, in column order."""
    return (item.metric, grain.value, start, item.subject, item.detail, item.service, *people)


def count(db: AsyncSession, item: Item, day: date, people: People, delta: int = 1) -> None:
    """Add ``delta`` to ``item`` for ``people`` in the day, week and month holding ``day``."""
    for grain in Grain:
        count_in(db, item, grain, period_start(grain, day), people, delta)


def count_in(db: AsyncSession, item: Item, grain: Grain, start: date, people: People, delta: int = 1) -> None:
    """Add ``delta`` to ``item`` for ``people`` in one period (participants are counted per period)."""
    pending: Counter[CounterKey] = db.sync_session.info.setdefault(PENDING, Counter())
    pending[counter_key(item, grain, start, people)] += delta


def move(db: AsyncSession, item: Item, day: date, old: People, new: People, amount: int) -> None:
    """Move ``amount`` of ``item`` from one group to another (the session's demographics changed)."""
    count(db, item, day, old, -amount)
    count(db, item, day, new, amount)


COLUMNS = ("metric", "grain", "period_start", "subject", "detail", "service", *People._fields)


def _upsert(builder: Any) -> Any:
    statement = builder(table_of(StatsCount))
    return statement.on_conflict_do_update(
        index_elements=list(COLUMNS), set_={"value": StatsCount.value + statement.excluded.value}
    )


# Built once: building the upsert on every commit cost more than running it.
UPSERT = {"postgresql": _upsert(postgresql.insert), "sqlite": _upsert(sqlite.insert)}


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    """Upsert the transaction's counter changes, in key order; zero changes are skipped."""
    pending: Counter[CounterKey] | None = session.info.pop(PENDING, None)
    if not pending:
        return
    rows: list[dict[str, Any]] = [
        {**dict(zip(COLUMNS, key, strict=True)), "value": delta}
        for key, delta in sorted(pending.items())
        if delta != 0
    ]
    if not rows:
        return
    session.flush()  # the transaction's other changes first: the counters are the last write before COMMIT
    connection = session.connection()
    connection.execute(UPSERT[connection.dialect.name], rows)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction: object) -> None:
    """A rolled-back transaction counted nothing."""
    session.info.pop(PENDING, None)
