"""Cases are counted as they are opened, first answered and closed, with how long the answer took."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from app.stats.cases import bound_of, bucket
from app.stats.dimensions import Grain
from app.stats.models import StatsCount
from app.stats.reading import Query
from app.stats.reports import Reports
from tests.test_cases_service import World, _open, world

__all__ = ["world"]  # the fixture, shared with the case service's tests

ANSWER_DELAYS_HOURS = (1, 3, 3, 20, 30, 100)


async def _answer_after(world: World, case_id: int, hours: float) -> None:
    async with world.sessions() as db:
        service = world.service(db)
        case = await service.get(case_id)
        world.clock.advance(hours=hours)
        await service.answer_text(case, await world.manager(db), "Respuesta.", case.version)
        await db.commit()
        world.clock.advance(hours=-hours)


async def _counts(world: World) -> Counter[tuple[str, str, str, str]]:
    async with world.sessions() as db:
        rows = (await db.scalars(select(StatsCount).where(StatsCount.grain == Grain.MONTH.value))).all()
    totals: Counter[tuple[str, str, str, str]] = Counter()
    for row in rows:
        totals[(row.metric, row.subject, row.detail, row.gender)] += row.value
    return totals


def test_response_time_buckets() -> None:
    """Each wait falls in the first bucket whose bound it does not pass; beyond 30 days is ``over``."""
    assert [bucket(h) for h in (0, 0.25, 0.3, 3, 24, 24.5, 720, 721)] == [
        "le_0.25",
        "le_0.25",
        "le_0.5",
        "le_4",
        "le_24",
        "le_48",
        "le_720",
        "over",
    ]
    assert (bound_of("le_0.5"), bound_of("over")) == (0.5, None)


async def test_opened_answered_closed_are_counted_once_each(world: World) -> None:
    """A second answer to the same case does not count again; the wait lands in its bucket."""
    case_id = await _open(world, language="es")
    await _answer_after(world, case_id, 3)
    await _answer_after(world, case_id, 5)
    async with world.sessions() as db:
        service = world.service(db)
        case = await service.get(case_id)
        await service.close(case, await world.manager(db), case.version)
        await db.commit()
    totals = await _counts(world)
    assert totals[("cases_opened", "water", "", "mujer")] == 1
    assert totals[("cases_answered", "water", "", "mujer")] == 1
    assert totals[("response_time", "water", "le_4", "mujer")] == 1
    assert totals[("cases_closed", "water", "", "mujer")] == 1


async def test_the_cases_report_gives_median_and_p90_from_published_groups(world: World) -> None:
    """Six cases answered after 1 to 100 hours: the median is within 4 hours, nine in ten within 120."""
    for hours in ANSWER_DELAYS_HOURS:
        await _answer_after(world, await _open(world, language="es"), hours)
    today = (world.clock.now - timedelta(hours=5)).date()
    async with world.sessions() as db:
        reports = Reports(db, world.flow, 5, "America/Lima")
        query = Query(today - timedelta(days=10), today + timedelta(days=10))
        report = await reports.cases(query)
        [water] = [row for row in report.rows if row.topic == "water"]
        assert (water.opened.value, water.answered.value) == (6, 6)
        assert (water.first_answer_hours_median, water.first_answer_hours_p90) == (4.0, 120.0)
        small = await Reports(db, world.flow, 7, "America/Lima").cases(query)
        [hidden] = [row for row in small.rows if row.topic == "water"]
        assert hidden.answered.suppressed
        assert (hidden.first_answer_hours_median, hidden.first_answer_hours_p90) == (None, None)
