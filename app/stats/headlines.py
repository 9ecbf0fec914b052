"""The headline figures as charts: reports from the rollups turned into Spanish-labelled chart data.

The dashboard draws these charts; ``rimay stats`` prints the same ones as tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from app.flows.model import CaseTopicNode, FlowDefinition, QuestionNode
from app.stats.charts import Chart, Point, Series, Unit
from app.stats.dimensions import Grain, period_start, periods
from app.stats.reading import Query
from app.stats.reports import Reports
from app.stats.schemas import (
    CaseRow,
    CasesReport,
    Figure,
    ParticipationReport,
    ParticipationRow,
    SurveyReport,
)

DEFAULT_PERIODS: Final = 6
"""Shown when no range is asked for: the period so far and the five before it."""
MAX_PERIODS: Final = 60
"""More bars than this would not be readable (and would make a slow page or a long table)."""


def first_of_default(grain: Grain, last: date) -> date:
    """The start of the DEFAULT_PERIODS periods ending with the one holding ``last``."""
    start = period_start(grain, last)
    for _ in range(DEFAULT_PERIODS - 1):
        start = period_start(grain, start - timedelta(days=1))
    return start


def too_long(first: date, last: date, grain: Grain, max_days: int) -> bool:
    """Whether a range is over ``max_days`` days or MAX_PERIODS periods."""
    return (last - first).days >= max_days or len(periods(grain, first, last)) > MAX_PERIODS


MONTHS: Final = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic")
KNOWN: Final = {
    "unknown": "Sin dato",
    "voice": "Voz",
    "sms": "SMS",
    "skipped": "Saltada",
    "answered": "Respondida",
}


def period_label(grain: Grain, start: date) -> str:
    """A period's name in Spanish: "mar 2025", "semana del 3 mar 2025" or "3 mar 2025"."""
    month = f"{MONTHS[start.month - 1]} {start.year}"
    if grain == Grain.MONTH:
        return month
    day = f"{start.day} {month}"
    return f"semana del {day}" if grain == Grain.WEEK else day


def part_of(part: Figure, whole: Figure) -> Point:
    """``part`` as a percentage of ``whole``, from published figures only; hidden if either is."""
    if part.suppressed or whole.suppressed:
        return Point(None, suppressed=True)
    if part.value is None or not whole.value:
        return Point(None)
    return Point(round(100 * part.value / whole.value, 1))


def point(figure: Figure) -> Point:
    """A published figure as a chart point."""
    return Point(figure.value, figure.suppressed)


@dataclass(frozen=True)
class Labels:
    """Spanish names of dimension values, answers and topics, taken from the flow's own labels."""

    flow: FlowDefinition

    def name(self, dimension: str, value: str | None) -> str:
        """A value's label, e.g. ``mujer`` as "Mujer"; unknown values keep their stored name."""
        if value is None:
            return "Total"
        if value in KNOWN:
            return KNOWN[value]
        if dimension == "language":
            return self.flow.language_name(value)
        question = self.flow.questions().get(self.flow.profile_questions().get(dimension, ""))
        return self.answer(question, value) if question is not None else value

    def answer(self, question: QuestionNode | None, value: str) -> str:
        """A survey answer's label."""
        if value in KNOWN:
            return KNOWN[value]
        choices = self.flow.choices(question).values() if question is not None else ()
        return next((_spanish(c.label) for c in choices if c.name == value), value)

    def topic(self, value: str) -> str:
        """A case topic's label."""
        for node in self.flow.nodes.values():
            if isinstance(node, CaseTopicNode):
                for choice in node.topics.values():
                    if choice.name == value:
                        return _spanish(choice.label)
        return value

    def question(self, question_id: str) -> str:
        """A survey question as its short SMS heading (or its prompt, or its id)."""
        node = self.flow.questions().get(question_id)
        return _spanish(node.sms or node.prompt) if node is not None else question_id


def _spanish(text: Mapping[str, str]) -> str:
    return text.get("es") or next(iter(text.values()), "")


# ---------------------------------------------------------------------- reports to charts

ByPeriod = dict[str, dict[str | None, ParticipationRow]]
SHARES: Final = (
    ("gender", "Participantes por género (%)"),
    ("channel", "Participantes por canal (%)"),
    ("language", "Participantes por idioma (%)"),
)
SHARE_NOTE: Final = "Porcentaje de las personas que participaron en cada periodo (cada una cuenta una vez)."


def by_period(report: ParticipationReport, dimension: str) -> tuple[ByPeriod, tuple[str, ...]]:
    """Rows by period start and by the dimension's value (``None``: everyone), and the values in order."""
    table: ByPeriod = {}
    for row in report.rows:
        table.setdefault(row.group["period"] or "", {})[row.group.get(dimension)] = row
    values = (row.group.get(dimension) for row in report.rows)
    return table, tuple(dict.fromkeys(value for value in values if value is not None))


def participants_chart(report: ParticipationReport, grain: Grain, labels: Labels) -> Chart:
    """Participants in each period, everyone and by gender."""
    table, genders = by_period(report, "gender")
    series = [
        Series(
            labels.name("gender", gender), tuple(point(rows[gender].participants) for rows in table.values())
        )
        for gender in (None, *genders)
    ]
    return Chart(
        "participants",
        "Participantes por periodo y género",
        "Personas distintas que llamaron o escribieron en cada periodo, en total y por género.",
        _periods(table, grain),
        tuple(series),
    )


def shares_chart(report: ParticipationReport, dimension: str, title: str, labels: Labels) -> Chart:
    """Each value's share of the participants in each period (e.g. the share of women, of SMS)."""
    table, values = by_period(report, dimension)
    series = [
        Series(
            labels.name(dimension, value),
            tuple(part_of(rows[value].participants, rows[None].participants) for rows in table.values()),
        )
        for value in values
    ]
    grain = Grain(report.period)
    return Chart(f"share-{dimension}", title, SHARE_NOTE, _periods(table, grain), tuple(series), Unit.PERCENT)


def returning_chart(report: ParticipationReport) -> Chart:
    """The share of each period's participants who took part on two or more days."""
    table, _ = by_period(report, "")
    points = tuple(part_of(rows[None].returning, rows[None].participants) for rows in table.values())
    return Chart(
        "returning",
        "Personas que vuelven",
        "Porcentaje de participantes de cada periodo que participaron en dos o más días distintos.",
        _periods(table, Grain(report.period)),
        (Series("Vuelven", points),),
        Unit.PERCENT,
    )


def survey_chart(report: SurveyReport, labels: Labels) -> Chart:
    """How many gave each answer to one question (skips included)."""
    question_id = report.subject or ""
    node = labels.flow.questions().get(question_id)
    rows = [row for row in report.rows if row.answer is not None and not row.group]
    total = next((row.count for row in report.rows if row.answer is None and not row.group), None)
    said = "oculto" if total is None or total.suppressed else str(total.value)
    return Chart(
        f"survey-{question_id}",
        labels.question(question_id),
        f"Respuestas a la pregunta «{question_id}» (total: {said}), incluidas las saltadas.",
        tuple(labels.answer(node, row.answer or "") for row in rows),
        (Series("Respuestas", tuple(point(row.count) for row in rows)),),
    )


def cases_charts(report: CasesReport, labels: Labels) -> tuple[Chart, Chart]:
    """Cases opened, answered and closed by topic; and how many hours the first answer took."""
    rows = [row for row in report.rows if not row.group]
    topics = tuple(labels.topic(row.topic) for row in rows)
    counts = Chart(
        "cases",
        "Casos por tema",
        "Casos de la línea de preguntas abiertos, respondidos (primera respuesta) y cerrados en el rango.",
        topics,
        tuple(
            Series(name, tuple(point(getattr(row, field)) for row in rows))
            for name, field in (("Abiertos", "opened"), ("Respondidos", "answered"), ("Cerrados", "closed"))
        ),
    )
    hours = Chart(
        "case-hours",
        "Tiempo hasta la primera respuesta",
        "Horas en que llegó la mitad (mediana) y nueve de cada diez (p90) primeras respuestas, por tema; "
        "cada cifra es el límite del tramo de tiempo en que cae.",
        topics,
        tuple(
            Series(name, tuple(_hours(row, field) for row in rows))
            for name, field in (("Mediana", "first_answer_hours_median"), ("p90", "first_answer_hours_p90"))
        ),
        Unit.HOURS,
    )
    return counts, hours


def _hours(row: CaseRow, field: str) -> Point:
    """A response time, hidden when the count of answered cases is."""
    value: float | None = getattr(row, field)
    return Point(None, suppressed=True) if row.answered.suppressed else Point(value)


def _periods(table: ByPeriod, grain: Grain) -> tuple[str, ...]:
    return tuple(period_label(grain, date.fromisoformat(start)) for start in table)


async def headlines(reports: Reports, first: date, last: date, grain: Grain) -> list[Chart]:
    """Participation: by gender, channel and language, and the share of people who come back."""
    labels = Labels(reports.flow)

    async def participation(*dimensions: str) -> ParticipationReport:
        return await reports.participation(Query(first, last, ("period", *dimensions), grain))

    charts = [participants_chart(await participation("gender"), grain, labels)]
    for dimension, title in SHARES:
        charts.append(shares_chart(await participation(dimension), dimension, title, labels))
    charts.append(returning_chart(await participation()))
    return charts


async def question_line(reports: Reports, first: date, last: date) -> list[Chart]:
    """Cases by topic and how fast they got their first answer."""
    return list(cases_charts(await reports.cases(Query(first, last)), Labels(reports.flow)))


async def survey_charts(reports: Reports, first: date, last: date, questions: Sequence[str]) -> list[Chart]:
    """The answer distribution of each question (``reports.UnknownQuestion`` for one nobody knows)."""
    labels = Labels(reports.flow)
    return [
        survey_chart(await reports.survey(question, Query(first, last)), labels) for question in questions
    ]
