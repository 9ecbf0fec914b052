"""The statistics dashboard: the partners' headline figures as charts, for managers and admins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.db.base import utcnow
from app.deps import FlowsDep, SessionDep, SettingsDep
from app.stats.dimensions import Grain, local_day
from app.stats.headlines import (
    MAX_PERIODS,
    first_of_default,
    headlines,
    question_line,
    survey_charts,
    too_long,
)
from app.stats.reports import Reports
from app.web.deps import CurrentManager
from app.web.pages import WebRefusal, render

router = APIRouter(include_in_schema=False)
GRAINS: Final = {Grain.MONTH: "Mes", Grain.WEEK: "Semana", Grain.DAY: "Día"}


@dataclass(frozen=True)
class Range:
    """The days and period length the dashboard shows."""

    first: date
    last: date
    grain: Grain


def default_range(today: date, grain: Grain = Grain.MONTH) -> Range:
    """The current period (so far) and the whole periods before it (six in all)."""
    return Range(first_of_default(grain, today), today, grain)


def chosen_range(today: date, first: str, last: str, period: str, max_days: int) -> Range:
    """The range the form asks for; a malformed or backwards one is refused with a page saying why."""
    if period not in GRAINS:
        raise WebRefusal(400, "Periodo no válido", "El periodo debe ser mes, semana o día.")
    grain = Grain(period)
    fallback = default_range(today, grain)
    try:
        start = date.fromisoformat(first) if first else fallback.first
        end = date.fromisoformat(last) if last else fallback.last
    except ValueError as error:
        raise WebRefusal(400, "Fecha no válida", "Escriba las fechas como AAAA-MM-DD.") from error
    if start > end:
        raise WebRefusal(400, "Rango no válido", "La fecha «desde» es posterior a la fecha «hasta».")
    if too_long(start, end, grain, max_days):
        raise WebRefusal(
            400,
            "Rango demasiado largo",
            f"Elija como máximo {max_days} días y {MAX_PERIODS} periodos (por ejemplo, meses y no días).",
        )
    return Range(start, end, grain)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    flows: FlowsDep,
    signed_in: CurrentManager,
    first: Annotated[str, Query(alias="from", max_length=10)] = "",
    last: Annotated[str, Query(alias="to", max_length=10)] = "",
    period: Annotated[str, Query(max_length=8)] = Grain.MONTH.value,
) -> Response:
    """Participation, shares, returning, the survey and the question line, each a chart and a table."""
    today = local_day(utcnow(), ZoneInfo(settings.stats_time_zone))
    shown = chosen_range(today, first, last, period, settings.stats_max_days)
    flow = flows[settings.default_flow]
    reports = Reports(db, flow, settings.stats_min_cell, settings.stats_time_zone)
    charts = await headlines(reports, shown.first, shown.last, shown.grain)
    cases = await question_line(reports, shown.first, shown.last)
    survey = await survey_charts(reports, shown.first, shown.last, list(flow.questions()))
    return render(
        request,
        "dashboard.html",
        signed_in=signed_in,
        shown=shown,
        grains=GRAINS,
        charts=charts,
        cases=cases,
        survey=survey,
        min_cell=settings.stats_min_cell,
        time_zone=settings.stats_time_zone,
    )
