"""`rimay stats`: the dashboard's headline figures as terminal tables, protected with the configured k."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from app.db.engine import make_async_engine, make_sessionmaker
from app.flows.loader import FlowLoadError, load_flows
from app.settings import Settings, get_settings
from app.stats.charts import Chart
from app.stats.dimensions import Grain
from app.stats.headlines import (
    MAX_PERIODS,
    first_of_default,
    headlines,
    question_line,
    survey_charts,
    too_long,
)
from app.stats.rebuild import rebuild as rebuild_rollups
from app.stats.reports import Reports, UnknownQuestion

stats_app = typer.Typer(
    help="Headline statistics, and recounting them.", invoke_without_command=True, no_args_is_help=False
)


@stats_app.callback()
def stats(
    context: typer.Context,
    first: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (default: 5 periods before this one).")
    ] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (default: today).")] = None,
    period: Annotated[Grain, typer.Option(help="Length of a period.")] = Grain.MONTH,
    question: Annotated[
        list[str] | None, typer.Option("--question", help="Also a survey question's answers (repeatable).")
    ] = None,
) -> None:
    """Print participation, shares, returning and case response times (hidden figures as —)."""
    if context.invoked_subcommand is not None:
        return
    settings = get_settings()
    today = datetime.now(ZoneInfo(settings.stats_time_zone)).date()
    start, end = _range(today, first, last, period, settings.stats_max_days)
    try:
        charts = asyncio.run(_charts(settings, start, end, period, question or []))
    except FlowLoadError as error:
        typer.echo("\n".join(error.problems), err=True)
        raise typer.Exit(1) from error
    except UnknownQuestion as error:
        raise typer.BadParameter(f"no survey question {error}", param_hint="'--question'") from error
    typer.echo(f"{start} to {end} by {period.value}; counts below {settings.stats_min_cell} are hidden (—).")
    for chart in charts:
        typer.echo("")
        typer.echo(table(chart))


@stats_app.command()
def rebuild() -> None:
    """Recount the statistics from every stored session and case (after upgrading from a version without).

    Stop the service first: a call counted live while the rebuild runs may be counted twice.
    """
    settings = get_settings()
    sessions, cases = asyncio.run(_rebuild(settings))
    typer.echo(f"recounted {sessions} session(s) and {cases} case(s)")


async def _rebuild(settings: Settings) -> tuple[int, int]:
    flows = load_flows(settings.flows_dir)
    engine = make_async_engine(settings.sqlalchemy_url)
    try:
        return await rebuild_rollups(make_sessionmaker(engine), flows, ZoneInfo(settings.stats_time_zone))
    finally:
        await engine.dispose()


def _range(
    today: date, first: str | None, last: str | None, grain: Grain, max_days: int
) -> tuple[date, date]:
    """The days asked for; a malformed, backwards or too long range exits with code 2 and says why."""
    end = _day(last, "'--to'") if last is not None else today
    start = _day(first, "'--from'") if first is not None else first_of_default(grain, end)
    if start > end:
        raise typer.BadParameter(f"--from {start} is after --to {end}", param_hint="'--from'")
    if too_long(start, end, grain, max_days):
        raise typer.BadParameter(
            f"at most {max_days} days and {MAX_PERIODS} periods (try a longer --period)",
            param_hint="'--from'",
        )
    return start, end


def _day(text: str, hint: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)", param_hint=hint) from error


async def _charts(
    settings: Settings, start: date, end: date, grain: Grain, questions: list[str]
) -> list[Chart]:
    flow = load_flows(settings.flows_dir)[settings.default_flow]
    engine = make_async_engine(settings.sqlalchemy_url)
    try:
        async with make_sessionmaker(engine)() as db:
            reports = Reports(db, flow, settings.stats_min_cell, settings.stats_time_zone)
            charts = await headlines(reports, start, end, grain)
            charts += await question_line(reports, start, end)
            return charts + await survey_charts(reports, start, end, questions)
    finally:
        await engine.dispose()


def table(chart: Chart) -> str:
    """A chart's figures as an aligned text table under its title."""
    header = ["", *(series.name for series in chart.series)]
    rows = [header, *([category, *cells] for category, cells in chart.rows())]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [chart.title, "-" * len(chart.title)]
    for row in rows:
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
