"""The parameters of a responses request: time filters and keyset pagination, checked strictly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from app.floip.errors import InvalidPageSize, InvalidTimestamp
from app.floip.keys import FloipKeys
from app.floip.responses import timestamp

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
PAGE_SIZE_PATTERN: Final = re.compile(r"[0-9]{1,4}")
MAX_TIMESTAMP_LENGTH: Final = 40
# An unencoded "+" in a query string arrives as a space: "...T06:00:00 00:00" meant "+00:00".
LOST_PLUS: Final = re.compile(r" (\d{2}:?\d{2})$")


@dataclass(frozen=True)
class ResponseQuery:
    """Rows after ``after`` (a row id), recorded after ``start`` and up to ``end``, ``size`` at a time."""

    start: datetime | None = None
    end: datetime | None = None
    size: int = DEFAULT_PAGE_SIZE
    after: int = 0
    cursor: str | None = None
    """The cursor ``after`` came from, repeated in the page's self link."""

    def params(self, cursor: str | None) -> dict[str, str]:
        """The query parameters of a link to the page after ``cursor`` with the same filters."""
        params: dict[str, str] = {}
        if self.start is not None:
            params["filter[start-timestamp]"] = timestamp(self.start)
        if self.end is not None:
            params["filter[end-timestamp]"] = timestamp(self.end)
        params["page[size]"] = str(self.size)
        if cursor is not None:
            params["page[afterCursor]"] = cursor
        return params


def parse_query(
    keys: FloipKeys,
    package_id: str,
    *,
    start: str | None,
    end: str | None,
    size: str | None,
    cursor: str | None,
) -> ResponseQuery:
    """Check every parameter; raise a typed error naming the first bad one."""
    return ResponseQuery(
        start=parse_timestamp("filter[start-timestamp]", start),
        end=parse_timestamp("filter[end-timestamp]", end),
        size=parse_page_size(size),
        after=keys.read_cursor(package_id, cursor) if cursor is not None else 0,
        cursor=cursor,
    )


def parse_page_size(raw: str | None) -> int:
    """A page size of 1 to 1000 (100 when not given)."""
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not PAGE_SIZE_PATTERN.fullmatch(raw) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise InvalidPageSize(f"page[size] must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(raw)


def parse_timestamp(name: str, raw: str | None) -> datetime | None:
    """An RFC 3339 date-time with a time zone offset (or Z)."""
    if raw is None:
        return None
    text = LOST_PLUS.sub(r"+\1", raw.strip()) if len(raw) <= MAX_TIMESTAMP_LENGTH else ""
    moment = _aware(text)
    if moment is None:
        raise InvalidTimestamp(
            f"{name} must be an RFC 3339 date-time with an offset, e.g. 2026-11-25T06:00:00+00:00"
        )
    return moment


def _aware(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 next to an offset: refuse it here rather than fail in SQL
        return None
