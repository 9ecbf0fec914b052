"""Read `from`, `to`, `group_by` and `period` into a statistics query; anything unclear is refused."""

# No `from __future__ import annotations`: the dependency built in `report_query` annotates its
# parameters with values of the enclosing call, which FastAPI must evaluate there.

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from pydantic import WithJsonSchema

from app.deps import SettingsDep
from app.stats.dimensions import Dimension, Grain, period_start, periods
from app.stats.errors import (
    DuplicateDimension,
    InvalidDate,
    InvalidPeriod,
    QuestionNotFound,
    RangeReversed,
    RangeTooLong,
    TooManyDimensions,
    TooManyPeriods,
    UnknownDimension,
    UnknownParameter,
)
from app.stats.reading import Query as StatsQuery

PARAMETERS: Final = ("from", "to", "group_by", "period")
EARLIEST: Final = date(2000, 1, 1)
LATEST: Final = date(2999, 12, 31)
"""Dates outside these years cannot hold data; refusing them keeps period arithmetic far from date.max."""
QUESTION_ID: Final = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
"""What a flow's question ids look like (node ids and answer names); anything else cannot exist."""
DIMENSIONS: Final = tuple(dimension.value for dimension in Dimension)
GRAINS: Final = tuple(grain.value for grain in Grain)


@dataclass(frozen=True)
class Rules:
    """How many dimensions an endpoint takes; ``free`` ones are always included and do not count."""

    max_dimensions: int
    free: frozenset[str] = frozenset()


def parse_date(name: str, text: str | None) -> date | None:
    """An ISO calendar date (YYYY-MM-DD) within the years served, or ``None`` when not given."""
    if text is None:
        return None
    malformed = InvalidDate(f"{name} must be a date as YYYY-MM-DD")
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):  # fromisoformat also takes 20250105 and weeks
        raise malformed
    try:
        day = date.fromisoformat(text)
    except ValueError as error:
        raise malformed from error
    if not EARLIEST <= day <= LATEST:
        raise InvalidDate(f"{name} must be between {EARLIEST} and {LATEST}")
    return day


def parse_period(text: str | None) -> Grain:
    """The period length; month when not given."""
    if text is None:
        return Grain.MONTH
    if text not in GRAINS:
        raise InvalidPeriod(f"period must be one of {', '.join(GRAINS)}")
    return Grain(text)


def parse_group_by(values: Sequence[str], rules: Rules) -> tuple[str, ...]:
    """Dimensions from repeated and/or comma-separated values, in the order given; blanks are ignored."""
    names = [piece.strip() for value in values for piece in value.split(",") if piece.strip()]
    for name in names:
        if name not in DIMENSIONS:
            raise UnknownDimension(f"unknown dimension {name[:40]!r}; known: {', '.join(DIMENSIONS)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DuplicateDimension(f"group_by names {', '.join(repeated)} more than once")
    counted = [name for name in names if name not in rules.free]
    if len(counted) > rules.max_dimensions:
        extra = f" besides {', '.join(sorted(rules.free))}" if rules.free else ""
        raise TooManyDimensions(f"group_by takes at most {rules.max_dimensions} dimensions{extra}")
    return tuple(names)


def default_first(last: date, max_days: int) -> date:
    """Twelve calendar months ending with ``last``'s month, shortened to ``max_days`` if need be."""
    month = period_start(Grain.MONTH, last)
    year, index = divmod(month.year * 12 + month.month - 1 - 11, 12)
    return max(date(year, index + 1, 1), last - timedelta(days=max_days - 1))


def check_names(request: Request) -> None:
    """Refuse parameters this API does not take, and single-valued ones given twice."""
    unknown = sorted({name for name in request.query_params if name not in PARAMETERS})
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise UnknownParameter(f"unknown parameter {shown}; known: {', '.join(PARAMETERS)}")
    for name in ("from", "to", "period"):
        if len(request.query_params.getlist(name)) > 1:
            raise UnknownParameter(f"{name} may be given only once")


def build_query(
    first_text: str | None,
    last_text: str | None,
    group_by: Sequence[str],
    period_text: str | None,
    rules: Rules,
    *,
    today: date,
    max_days: int,
    max_periods: int,
) -> StatsQuery:
    """A checked query: known dimensions, not too many, a forward range no longer than ``max_days``."""
    period = parse_period(period_text)
    names = parse_group_by(group_by, rules)
    last = parse_date("to", last_text) or today
    first = parse_date("from", first_text) or default_first(last, max_days)
    if first > last:
        raise RangeReversed(f"from ({first}) is after to ({last})")
    days = (last - first).days + 1
    if days > max_days:
        raise RangeTooLong(f"the range covers {days} days; at most {max_days} are allowed")
    split = Dimension.PERIOD in names or Dimension.PERIOD in rules.free
    count = len(periods(period, first, last)) if split else 1
    if count > max_periods:
        raise TooManyPeriods(
            f"split by {period.value}, the range has {count} periods; at most {max_periods} are allowed"
        )
    return StatsQuery(first, last, names, period)


def check_question(question_id: str) -> str:
    """A question id that could exist; others are unknown without asking the database."""
    if not QUESTION_ID.fullmatch(question_id):
        raise QuestionNotFound("no survey question has this id")
    return question_id


FROM_DOC = "First local day (YYYY-MM-DD). Default: the first day of the month 11 months before `to`'s."
TO_DOC = "Last local day (YYYY-MM-DD), inclusive. Default: today in the statistics time zone."
GROUP_DOC = (
    f"Dimensions to split figures by: repeat the parameter or separate with commas ({', '.join(DIMENSIONS)})."
)


def _date_schema(example: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "format": "date", "examples": [example]})


PERIOD_DOC = "Length of a period when grouping by `period`: day, week (from Monday) or month (default)."


def report_query(rules: Rules) -> Callable[..., StatsQuery]:
    """A dependency reading the query string into a checked query, documented for `/docs`."""
    besides = f" besides {', '.join(sorted(rules.free))} (always included)" if rules.free else ""
    group_doc = f"{GROUP_DOC} At most {rules.max_dimensions}{besides}."

    def dependency(
        request: Request,
        settings: SettingsDep,
        first: Annotated[
            str | None, _date_schema("2025-01-01"), Query(alias="from", description=FROM_DOC)
        ] = None,
        last: Annotated[str | None, _date_schema("2025-06-30"), Query(alias="to", description=TO_DOC)] = None,
        group_by: Annotated[
            list[str] | None,
            WithJsonSchema(
                {
                    "type": "array",
                    "items": {"type": "string", "enum": list(DIMENSIONS)},
                    "examples": [["gender", "channel"]],
                }
            ),
            Query(description=group_doc),
        ] = None,
        period: Annotated[
            str | None,
            WithJsonSchema({"type": "string", "enum": list(GRAINS), "examples": ["month"]}),
            Query(description=PERIOD_DOC),
        ] = None,
    ) -> StatsQuery:
        check_names(request)
        today = datetime.now(ZoneInfo(settings.stats_time_zone)).date()
        return build_query(
            first,
            last,
            group_by or [],
            period,
            rules,
            today=today,
            max_days=settings.stats_max_days,
            max_periods=settings.stats_max_periods,
        )

    return dependency
