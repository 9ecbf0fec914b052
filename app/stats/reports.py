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

from app.errors import RimayError
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
        """Participants, sessions, returning and new participants, per period.

        Participants are distinct people within a period, so they cannot be added across periods: the
        period is always part of the group.
        """
        grouped = Query(
            query.first, query.last, ("period", *_without(query.group_by, "period")), query.period
        )
        sums = await read(self.db, grouped, PARTICIPATION, by_service="service" in query.group_by)
        plan = self._plan(sums, grouped, PARTICIPATION, subjects=[""])
        rows: list[ParticipationRow] = []
        for part, tables in plan.protected(self._protect):
            for key, group in plan.shape.groups(tables["participants"]):
                cells = {metric: tables[metric].get(key) for metric in PARTICIPATION}
                rows.append(
                    ParticipationRow(
                        group={**part.group, **group},
                        participants=figure(cells["participants"]),
                        sessions=figure(cells["sessions"]),
                        returning=figure(cells["returning"]),
                        new=figure(cells["new"]),
                        returning_share=share(cells["returning"], cells["participants"]),
                    )
                )
        return ParticipationReport(**self.header(grouped).model_dump(by_alias=True), rows=rows)

    async def library(self, query: Query) -> LibraryReport:
        """Plays and completions of each message (each message, and each period, a table of its own)."""
        sums = await read(self.db, query, LIBRARY)
        messages = merged(declared(self.flow, "message"), sums.subjects("plays"))
        plan = self._plan(sums, query, LIBRARY, subjects=messages)
        rows: list[LibraryRow] = []
        for part, tables in plan.protected(self._protect):
            for key, group in plan.shape.groups(tables["plays"]):
                cells = {metric: tables[metric].get(key) for metric in LIBRARY}
                rows.append(
                    LibraryRow(
                        message=part.subject,
                        group={**part.group, **group},
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
        plan = self._plan(
            sums, query, ("answers",), subjects=[question_id], answers=merged(declared_answers, seen)
        )
        rows: list[SurveyRow] = []
        for part, tables in plan.protected(self._protect):
            result = tables["answers"]
            rows.extend(
                SurveyRow(
                    answer=key[0],
                    group={**part.group, **dict(zip(plan.shape.dimensions[1:], key[1:], strict=True))},
                    count=figure(cell),
                    share=share(cell, result.get((None, *key[1:]))),
                )
                for key, cell in result.cells.items()
            )
        return SurveyReport(**self.header(query, question_id).model_dump(by_alias=True), rows=rows)

    async def cases(self, query: Query) -> CasesReport:
        """Cases opened, answered and closed by topic, and how long the first answer took."""
        sums = await read(self.db, query, (*CASES, "response_time"))
        topics = merged(declared(self.flow, "topic"), sums.subjects("cases_opened"))
        plan = self._plan(sums, query, CASES, subjects=topics)
        rows: list[CaseRow] = []
        for part, tables in plan.protected(self._protect):
            waits = plan.waits(part)
            for key, group in plan.shape.groups(tables["cases_opened"]):
                cells = {metric: tables[metric].get(key) for metric in CASES}
                answered = cells["cases_answered"]
                hist = _within(waits, key) if answered.value is not None else {}
                rows.append(
                    CaseRow(
                        topic=part.subject,
                        group={**part.group, **group},
                        opened=figure(cells["cases_opened"]),
                        answered=figure(answered),
                        closed=figure(cells["cases_closed"]),
                        first_answer_hours_median=_percentile(hist, 0.5),
                        first_answer_hours_p90=_percentile(hist, 0.9),
                    )
                )
        return CasesReport(**self.header(query).model_dump(by_alias=True), rows=rows)

    def _plan(
        self,
        sums: Sums,
        query: Query,
        metrics: Sequence[str],
        *,
        subjects: Sequence[str],
        answers: tuple[str, ...] | None = None,
    ) -> Plan:
        """The tables a report publishes: one per subject and period; refused if it is too much work."""
        dimensions = _without(query.group_by, "period")
        levels = tuple(merged(declared(self.flow, name), sums.seen(name)) for name in dimensions)
        shape = Shape(dimensions, levels)
        if answers is not None:
            shape = Shape(("answer", *dimensions), (answers, *levels))
        starts = [start.isoformat() for start in query.period_starts()] if query.by_period else [None]
        parts = [Part(subject, start) for subject in subjects for start in starts]
        plan = Plan(sums, shape, metrics, parts, answers is not None)
        work = plan.three_way_cells()
        if work > MAX_THREE_WAY_CELLS:
            raise TooMuchWork(
                f"this asks for {work} cells in three-way tables (at most {MAX_THREE_WAY_CELLS}): "
                "use fewer dimensions, a shorter range or a longer period"
            )
        return plan

    def _protect(self, table: Table) -> ProtectedTable:
        """``protect`` with a memory: the same table (same data, same k) is protected once per process."""
        key = (
            table.dimensions,
            table.levels,
            tuple(sorted(table.counts.items())),
            table.with_margins,
            self.k,
        )
        found = _MEMO.get(key)
        if found is None:
            found = protect(table, self.k)
            if len(_MEMO) >= MEMO_SIZE:
                _MEMO.pop(next(iter(_MEMO)))
            _MEMO[key] = found
        return found


MAX_THREE_WAY_CELLS = 2000
"""Protecting three-way tables costs far more than smaller ones; this bounds one request's work."""
MEMO_SIZE = 4096
_MEMO: dict[object, ProtectedTable] = {}


def forget_protected() -> None:
    """Empty the memo of protected tables (benchmarks measure the full cost)."""
    _MEMO.clear()


class TooMuchWork(RimayError):
    """A request whose tables would take too long to protect."""

    status_code = 422
    code = "too_many_cells"


@dataclass(frozen=True)
class Part:
    """One table of a report: about one subject (a message, a topic), in one period or the whole range."""

    subject: str
    period: str | None

    @property
    def group(self) -> Group:
        """What the part adds to each row's group."""
        return {} if self.period is None else {"period": self.period}


@dataclass(frozen=True)
class Plan:
    """The counts a report reads, cut into its tables."""

    sums: Sums
    shape: Shape
    metrics: Sequence[str]
    parts: list[Part]
    by_answer: bool

    def three_way_cells(self) -> int:
        """Interior cells of every three-way table the report would protect."""
        if len(self.shape.dimensions) < 3:
            return 0
        cells = 1
        for values in self.shape.levels:
            cells *= len(values)
        return cells * len(self.parts) * len(self.metrics)

    def protected(
        self, protect_table: Callable[[Table], ProtectedTable]
    ) -> list[tuple[Part, dict[str, ProtectedTable]]]:
        """Each part with each metric's table, protected."""
        return [
            (
                part,
                {
                    metric: protect_table(self.shape.table(self.counts(metric, part)))
                    for metric in self.metrics
                },
            )
            for part in self.parts
        ]

    def counts(self, metric: str, part: Part) -> dict[tuple[str, ...], int]:
        """One metric's counts in one part, by group (the answer first in survey tables)."""
        counts: dict[tuple[str, ...], int] = {}
        for (name, about, detail), groups in self.sums.values.items():
            if name != metric or (part.subject and about != part.subject):
                continue
            for group, value in self._in_part(groups, part):
                key = (detail, *group) if self.by_answer else group
                counts[key] = counts.get(key, 0) + value
        return counts

    def waits(self, part: Part) -> dict[tuple[str, ...], dict[str, int]]:
        """Response-time buckets per group in one part."""
        waits: dict[tuple[str, ...], dict[str, int]] = {}
        for (name, about, detail), groups in self.sums.values.items():
            if name == "response_time" and about == part.subject:
                for group, value in self._in_part(groups, part):
                    bucket = waits.setdefault(group, {})
                    bucket[detail] = bucket.get(detail, 0) + value
        return waits

    def _in_part(
        self, groups: Mapping[tuple[str, ...], int], part: Part
    ) -> list[tuple[tuple[str, ...], int]]:
        """The groups in the part's period, with the period dropped from them."""
        if "period" not in self.sums.dimensions:
            return list(groups.items())
        at = self.sums.dimensions.index("period")
        return [
            (group[:at] + group[at + 1 :], value)
            for group, value in groups.items()
            if group[at] == part.period
        ]


def _without(names: Sequence[str], name: str) -> tuple[str, ...]:
    return tuple(other for other in names if other != name)


def _within(waits: Mapping[tuple[str, ...], Mapping[str, int]], key: EntryKey) -> dict[str, int]:
    """The response-time buckets of every group inside a cell or total."""
    hist: dict[str, int] = {}
    for group, buckets in waits.items():
        if key == ("all",) or all(
            part is None or part == value for part, value in zip(key, group, strict=False)
        ):
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
