"""The four partner reports: counters read from the rollups, shaped into tables, protected, then published.

Every figure goes through ``disclosure.protect``: counts below k are hidden and enough others with them that
no hidden count can be worked out from totals. Shares are computed from published figures only. Rows
come in a fixed order and nothing in a report depends on the time it was made, so the same query on the
same data gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.flows.model import FlowDefinition
from app.stats.cases import bound_of
from app.stats.disclosure import Cell, EntryKey, ProtectedTable, Table, protect, share
from app.stats.levels import answers, declared, merged
from app.stats.reading import Query, Sums, read
from app.stats.schemas import (
    CaseRow,
    CasesReport,
    Figure,
    LibraryReport,
    LibraryRow,
    ParticipationReport,
    ParticipationRow,
    ReportHeader,
    SurveyReport,
    SurveyRow,
)

PARTICIPATION = ("participants", "sessions", "returning", "new")
LIBRARY = ("plays", "voice_plays", "completions")
CASES = ("cases_opened", "cases_answered", "cases_closed")
Group = dict[str, str | None]


class UnknownQuestion(LookupError):
    """No survey question has this id, in the flow or in the counts."""


@dataclass(frozen=True)
class Shape:
    """The dimensions of one table and the values each can take."""

    dimensions: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]

    def table(self, counts: Mapping[tuple[str, ...], int]) -> Table:
        """The count table; without dimensions, a single cell holds the whole count."""
        if not self.dimensions:
            return Table(("all",), (("all",),), {("all",): sum(counts.values())}, with_margins=False)
        return Table(self.dimensions, self.levels, dict(counts))

    def groups(self, result: ProtectedTable) -> list[tuple[EntryKey, Group]]:
        """Each published key with its group (``None`` in a group means all values: a total)."""
        if not self.dimensions:
            return [(key, {}) for key in result.cells]
        return [(key, dict(zip(self.dimensions, key, strict=True))) for key in result.cells]


def figure(cell: Cell) -> Figure:
    """A published figure in the wire form."""
    return Figure(value=cell.value, suppressed=cell.suppressed)


class Reports:
    """Builds reports from the rollups for one flow and one minimum cell size ``k``."""

    def __init__(self, db: AsyncSession, flow: FlowDefinition, k: int, time_zone: str) -> None:
        self.db = db
        self.flow = flow
        self.k = k
        self.time_zone = time_zone

    def header(self, query: Query, subject: str | None = None) -> ReportHeader:
        """What the report covers, echoed so a saved file explains itself."""
        first, last = query.covered()
        return ReportHeader(
            **{"from": first, "to": last},
            period=query.period.value,
            group_by=list(query.group_by),
            min_cell=self.k,
            time_zone=self.time_zone,
            subject=subject,
        )

    async def participation(self, query: Query) -> ParticipationReport:
        """Participants, sessions, returning and new participants; each period is a table of its own.

        Participants are distinct people within a period, so they cannot be added across periods: no
        total over periods is published, and the period is always part of the group.
        """
        grouped = Query(
            query.first, query.last, ("period", *_without(query.group_by, "period")), query.period
        )
        sums = await read(self.db, grouped, PARTICIPATION, by_service="service" in query.group_by)
        shape = self._shape(sums, grouped, grouped.group_by[1:])
        rows: list[ParticipationRow] = []
        for start in [day.isoformat() for day in grouped.period_starts()]:
            tables = {
                metric: protect(shape.table(_slice(sums, metric, 0, start)), self.k)
                for metric in PARTICIPATION
            }
            for key, group in shape.groups(tables["participants"]):
                cells = {metric: tables[metric].get(key) for metric in PARTICIPATION}
                rows.append(
                    ParticipationRow(
                        group={"period": start, **group},
                        participants=figure(cells["participants"]),
                        sessions=figure(cells["sessions"]),
                        returning=figure(cells["returning"]),
                        new=figure(cells["new"]),
                        returning_share=share(cells["returning"], cells["participants"]),
                    )
                )
        return ParticipationReport(**self.header(grouped).model_dump(by_alias=True), rows=rows)

    async def library(self, query: Query) -> LibraryReport:
        """Plays and completions of each message (each message a table of its own)."""
        sums = await read(self.db, query, LIBRARY)
        shape = self._shape(sums, query, query.group_by)
        rows: list[LibraryRow] = []
        for message in merged(declared(self.flow, "message"), sums.subjects("plays")):
            tables = {
                metric: protect(shape.table(_by_subject(sums, metric, message)), self.k) for metric in LIBRARY
            }
            for key, group in shape.groups(tables["plays"]):
                cells = {metric: tables[metric].get(key) for metric in LIBRARY}
                rows.append(
                    LibraryRow(
                        message=message,
                        group=group,
                        plays=figure(cells["plays"]),
                        voice_plays=figure(cells["voice_plays"]),
                        completions=figure(cells["completions"]),
                        completion_rate=share(cells["completions"], cells["voice_plays"]),
                    )
                )
        return LibraryReport(**self.header(query).model_dump(by_alias=True), rows=rows)

    async def survey(self, question_id: str, query: Query) -> SurveyReport:
        """The distribution of one question's answers (skips included) in each group."""
        sums = await read(self.db, query, ("answers",), subject=question_id)
        declared_answers = answers(self.flow, question_id)
        if not declared_answers and not sums.subjects("answers"):
            raise UnknownQuestion(question_id)
        seen = {detail for (_, _, detail), groups in sums.values.items() if groups}
        group_shape = self._shape(sums, query, query.group_by)
        shape = Shape(
            ("answer", *group_shape.dimensions), (merged(declared_answers, seen), *group_shape.levels)
        )
        counts = {
            (detail, *group): value
            for (_, _, detail), groups in sums.values.items()
            for group, value in groups.items()
        }
        result = protect(shape.table(counts), self.k)
        rows = [
            SurveyRow(
                answer=key[0],
                group=dict(zip(shape.dimensions[1:], key[1:], strict=True)),
                count=figure(cell),
                share=share(cell, result.get((None, *key[1:]))),
            )
            for key, cell in result.cells.items()
        ]
        return SurveyReport(**self.header(query, question_id).model_dump(by_alias=True), rows=rows)

    async def cases(self, query: Query) -> CasesReport:
        """Cases opened, answered and closed by topic, and how long the first answer took."""
        sums = await read(self.db, query, (*CASES, "response_time"))
        shape = self._shape(sums, query, query.group_by)
        rows: list[CaseRow] = []
        for topic in merged(declared(self.flow, "topic"), sums.subjects("cases_opened")):
            tables = {
                metric: protect(shape.table(_by_subject(sums, metric, topic)), self.k) for metric in CASES
            }
            waits = _waits(sums, topic)
            for key, group in shape.groups(tables["cases_opened"]):
                cells = {metric: tables[metric].get(key) for metric in CASES}
                answered = cells["cases_answered"]
                hist = _within(waits, key) if answered.value is not None else {}
                rows.append(
                    CaseRow(
                        topic=topic,
                        group=group,
                        opened=figure(cells["cases_opened"]),
                        answered=figure(answered),
                        closed=figure(cells["cases_closed"]),
                        first_answer_hours_median=_percentile(hist, 0.5),
                        first_answer_hours_p90=_percentile(hist, 0.9),
                    )
                )
        return CasesReport(**self.header(query).model_dump(by_alias=True), rows=rows)

    def _tables(
        self, shape: Shape, metrics: Sequence[str], counts: Callable[[str], Mapping[tuple[str, ...], int]]
    ) -> dict[str, ProtectedTable]:
        """Each metric's table, protected on its own."""
        return {metric: protect(shape.table(counts(metric)), self.k) for metric in metrics}

    def _shape(self, sums: Sums, query: Query, dimensions: Sequence[str]) -> Shape:
        """Levels of each dimension: declared by the flow first, then any others found in the counts."""
        levels = []
        for name in dimensions:
            if name == "period":
                levels.append(tuple(start.isoformat() for start in query.period_starts()))
            else:
                levels.append(merged(declared(self.flow, name), sums.seen(name)))
        return Shape(tuple(dimensions), tuple(levels))


def _without(names: Sequence[str], name: str) -> tuple[str, ...]:
    return tuple(other for other in names if other != name)


def _slice(sums: Sums, metric: str, position: int, value: str) -> dict[tuple[str, ...], int]:
    """One metric's counts where the group's ``position`` equals ``value``, with that position dropped."""
    counts: dict[tuple[str, ...], int] = {}
    for (name, _, _), groups in sums.values.items():
        if name != metric:
            continue
        for group, count in groups.items():
            if group[position] == value:
                rest = group[:position] + group[position + 1 :]
                counts[rest] = counts.get(rest, 0) + count
    return counts


def _by_subject(sums: Sums, metric: str, subject: str) -> dict[tuple[str, ...], int]:
    """One metric's counts about one subject (a message, a topic), summed over details."""
    counts: dict[tuple[str, ...], int] = {}
    for (name, about, _), groups in sums.values.items():
        if name == metric and about == subject:
            for group, count in groups.items():
                counts[group] = counts.get(group, 0) + count
    return counts


def _waits(sums: Sums, topic: str) -> dict[tuple[str, ...], dict[str, int]]:
    """Response-time buckets per group for one topic."""
    waits: dict[tuple[str, ...], dict[str, int]] = {}
    for (name, about, detail), groups in sums.values.items():
        if name == "response_time" and about == topic:
            for group, count in groups.items():
                waits.setdefault(group, {})[detail] = count
    return waits


def _within(waits: Mapping[tuple[str, ...], Mapping[str, int]], key: EntryKey) -> dict[str, int]:
    """The response-time buckets of every group inside a cell or total."""
    matches: Callable[[tuple[str, ...]], bool] = lambda group: all(  # noqa: E731
        part is None or part == value for part, value in zip(key, group, strict=False)
    )
    hist: dict[str, int] = {}
    for group, buckets in waits.items():
        if not key or key == ("all",) or matches(group):
            for name, count in buckets.items():
                hist[name] = hist.get(name, 0) + count
    return hist


def _percentile(hist: Mapping[str, int], fraction: float) -> float | None:
    """The bucket bound (hours) under which ``fraction`` of first answers came; ``None`` if slower or none."""
    total = sum(hist.values())
    if total == 0:
        return None
    reached = 0
    for name in sorted(hist, key=lambda name: bound_of(name) or float("inf")):
        reached += hist[name]
        if reached >= fraction * total:
            return bound_of(name)
    return None  # pragma: no cover - the loop always reaches the total
