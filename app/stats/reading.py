"""Sum counters from the rollups for one query: per period when asked, else over whole months and days."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.stats.dimensions import ALL_SERVICES, Dimension, Grain, period_end, periods, tiles
from app.stats.models import StatsCount

MAX_GROUP_BY = 3


@dataclass(frozen=True)
class Query:
    """What a partner asks: a date range (inclusive, local days), groups, and the period length."""

    first: date
    last: date
    group_by: tuple[str, ...] = ()
    period: Grain = Grain.MONTH

    @property
    def by_period(self) -> bool:
        """Whether figures are split by period."""
        return Dimension.PERIOD in self.group_by

    def period_starts(self) -> list[date]:
        """Starts of the periods the range touches (whole periods are reported)."""
        return periods(self.period, self.first, self.last)

    def covered(self) -> tuple[date, date]:
        """The days actually reported: the range, widened to whole periods when split by period."""
        if not self.by_period:
            return self.first, self.last
        starts = self.period_starts()
        return starts[0], period_end(self.period, starts[-1])


@dataclass
class Sums:
    """Summed counters: ``(metric, subject, detail) -> group -> value``; a group follows ``dimensions``."""

    dimensions: tuple[str, ...]
    values: dict[tuple[str, str, str], dict[tuple[str, ...], int]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    def seen(self, dimension: str) -> set[str]:
        """Every value of ``dimension`` found in the sums."""
        position = self.dimensions.index(dimension)
        return {group[position] for groups in self.values.values() for group in groups}

    def subjects(self, metric: str) -> set[str]:
        """Every subject counted under ``metric``."""
        return {subject for (name, subject, _), groups in self.values.items() if name == metric and groups}


async def read(
    db: AsyncSession,
    query: Query,
    metrics: Sequence[str],
    *,
    subject: str | None = None,
    by_service: bool | None = None,
) -> Sums:
    """Sum the counters of ``metrics`` over the query's range, grouped by its dimensions.

    ``by_service`` matters for figures kept both per service and for the whole hotline (participants,
    sessions): ``None`` leaves the service alone (the metric is counted once per service anyway).
    """
    dimensions = tuple(query.group_by)
    group_columns = [_column(name) for name in dimensions]
    keys = (StatsCount.metric, StatsCount.subject, StatsCount.detail, *group_columns)
    statement = (
        select(*keys, func.sum(StatsCount.value))
        .where(StatsCount.metric.in_(list(metrics)), _when(query))
        .group_by(*keys)
    )
    if subject is not None:
        statement = statement.where(StatsCount.subject == subject)
    if by_service is not None:
        service_is_all = StatsCount.service == ALL_SERVICES
        statement = statement.where(~service_is_all if by_service else service_is_all)
    sums = Sums(dimensions)
    for metric, subject_value, detail, *rest in (await db.execute(statement)).all():
        *group, total = rest
        key = tuple(value.isoformat() if isinstance(value, date) else str(value) for value in group)
        sums.values[(str(metric), str(subject_value), str(detail))][key] = int(total)
    return sums


def _column(dimension: str) -> ColumnElement[object]:
    """The counter column holding a dimension (the period is the row's period start)."""
    if dimension == Dimension.PERIOD:
        return StatsCount.period_start  # type: ignore[return-value]
    return getattr(StatsCount, dimension)  # type: ignore[no-any-return]


def _when(query: Query) -> ColumnElement[bool]:
    """Rows of the query's periods, or of whole months and single days that tile its range exactly."""
    if query.by_period:
        starts = query.period_starts()
        return and_(
            StatsCount.grain == query.period.value,
            StatsCount.period_start >= starts[0],
            StatsCount.period_start <= starts[-1],
        )
    months = [start for grain, start in tiles(query.first, query.last) if grain == Grain.MONTH]
    conditions: list[ColumnElement[bool]] = []
    if months:
        conditions.append(and_(StatsCount.grain == Grain.MONTH.value, StatsCount.period_start.in_(months)))
    for head, tail in _day_runs(query.first, query.last, months):
        conditions.append(
            and_(
                StatsCount.grain == Grain.DAY.value,
                StatsCount.period_start >= head,
                StatsCount.period_start <= tail,
            )
        )
    return or_(*conditions)


def _day_runs(first: date, last: date, months: list[date]) -> list[tuple[date, date]]:
    """The stretches of single days before the first whole month and after the last one."""
    if not months:
        return [(first, last)]
    runs = []
    if first < months[0]:
        runs.append((first, months[0] - timedelta(days=1)))
    end_of_months = period_end(Grain.MONTH, months[-1]) + timedelta(days=1)
    if end_of_months <= last:
        runs.append((end_of_months, last))
    return runs
