"""The fixed dimensions of partner statistics: who, how, which service, and when (in a local time zone)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from app.flows.events import NodeKind
from app.flows.model import ArticleNode, FlowDefinition

UNKNOWN = "unknown"
"""The value of a dimension nobody told us (no demographics given, no language chosen yet)."""


class Dimension(StrEnum):
    """What figures can be grouped by; nothing finer exists, so nobody can drill down to a person."""

    GENDER = "gender"
    AGE_BAND = "age_band"
    LANGUAGE = "language"
    CHANNEL = "channel"
    COMMUNITY = "community"
    SERVICE = "service"
    PERIOD = "period"


PEOPLE = (Dimension.GENDER, Dimension.AGE_BAND, Dimension.LANGUAGE, Dimension.CHANNEL, Dimension.COMMUNITY)
"""The dimensions stored on every counter row, in column order."""


class Service(StrEnum):
    """The hotline's services, as partners name them."""

    LIBRARY = "library"
    NEWS = "news"
    SURVEY = "survey"
    QUESTION_LINE = "question_line"


ALL_SERVICES = ""
"""The service key of figures about the whole hotline (a session that used two services counts once)."""

SURVEY_KINDS = frozenset({NodeKind.QUESTION, NodeKind.CONSENT, NodeKind.RESUME, NodeKind.PROFILE_CHECK})
CASE_KINDS = frozenset(
    {
        NodeKind.CASE_TOPIC,
        NodeKind.RECORD,
        NodeKind.RECORD_REVIEW,
        NodeKind.CASE_CODE,
        NodeKind.REPLY_CHOICE,
        NodeKind.ANSWERS,
    }
)


def service_of(flow: FlowDefinition, node_id: str, kind: str) -> Service | None:
    """The service a node belongs to; menus, messages and the language menu belong to none."""
    if kind == NodeKind.ARTICLE:
        node = flow.nodes.get(node_id)
        return Service(node.service) if isinstance(node, ArticleNode) else Service.LIBRARY
    if kind == NodeKind.SUBSCRIBE:
        return Service.NEWS
    if kind in SURVEY_KINDS:
        return Service.SURVEY
    if kind in CASE_KINDS:
        return Service.QUESTION_LINE
    return None


class Grain(StrEnum):
    """How long a period is."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def period_start(grain: Grain, day: date) -> date:
    """The first day of the period holding ``day``; weeks start on Monday (ISO 8601)."""
    if grain == Grain.DAY:
        return day
    if grain == Grain.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(grain: Grain, start: date) -> date:
    """The first day of the period after the one starting on ``start``."""
    if grain == Grain.DAY:
        return start + timedelta(days=1)
    if grain == Grain.WEEK:
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_end(grain: Grain, start: date) -> date:
    """The last day of the period starting on ``start``."""
    return next_period(grain, start) - timedelta(days=1)


def periods(grain: Grain, first: date, last: date) -> list[date]:
    """Starts of every period that overlaps ``first``..``last``, in order."""
    starts, current = [], period_start(grain, first)
    while current <= last:
        starts.append(current)
        current = next_period(grain, current)
    return starts


def tiles(first: date, last: date) -> list[tuple[Grain, date]]:
    """The fewest whole months and single days that cover ``first``..``last`` exactly."""
    pieces: list[tuple[Grain, date]] = []
    day = first
    while day <= last:
        month_end = period_end(Grain.MONTH, day)
        if day.day == 1 and month_end <= last:
            pieces.append((Grain.MONTH, day))
            day = month_end + timedelta(days=1)
        else:
            pieces.append((Grain.DAY, day))
            day += timedelta(days=1)
    return pieces


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The calendar day of an aware timestamp in the statistics' time zone."""
    return moment.astimezone(zone).date()


def known(value: str | None) -> str:
    """A stored dimension value, with nothing known spelled ``unknown``."""
    return value if value else UNKNOWN
