"""Charts of published figures, drawn on the server as accessible SVG (no script, nothing from a CDN).

A chart is plain data (categories, series of points) so the same figures also make the table under it
and the terminal table of ``rimay stats``. A suppressed point is drawn as a hatched stub labelled
"oculto", never as a zero bar.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from markupsafe import Markup

from app.flows.model import CaseTopicNode, FlowDefinition, QuestionNode
from app.stats.dimensions import Grain
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

WIDTH: Final = 640
LABEL_WIDTH: Final = 180
VALUE_WIDTH: Final = 90
ROW: Final = 18
ROW_GAP: Final = 3
GROUP_GAP: Final = 10
LEGEND_HEIGHT: Final = 26
STUB: Final = 26
"""Width of a suppressed point's hatched stub: its size is unknown, so it is the same everywhere."""
LABEL_CHARS: Final = 28
PALETTE: Final = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7F7F7F")
"""Okabe-Ito colours: told apart by people with the common colour-vision deficiencies."""
SUPPRESSED: Final = "oculto"
NO_DATA: Final = "sin datos"
DASH: Final = "—"


class Unit(StrEnum):
    """What the values of a chart measure."""

    COUNT = "count"
    PERCENT = "percent"
    HOURS = "hours"


@dataclass(frozen=True)
class Point:
    """One figure: ``value`` is ``None`` when suppressed, or when there is nothing to show (no data)."""

    value: float | None
    suppressed: bool = False


@dataclass(frozen=True)
class Series:
    """One row of bars across the categories, e.g. one gender over the periods."""

    name: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Chart:
    """A grouped horizontal bar chart: one group of bars per category, one bar per series."""

    key: str
    """Unique on a page (letters, digits, hyphens): prefixes the SVG's element ids."""
    title: str
    description: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    unit: Unit = Unit.COUNT

    @property
    def empty(self) -> bool:
        """Nothing published and nothing hidden: the chart says "sin datos"."""
        points = [point for series in self.series for point in series.points]
        return not any(point.suppressed or point.value for point in points)

    @property
    def any_suppressed(self) -> bool:
        """Whether some figure is hidden (the legend then explains the hatching)."""
        return any(point.suppressed for series in self.series for point in series.points)

    def text(self, point: Point) -> str:
        """A figure as the table shows it: "—" when suppressed, "sin datos" when there is none."""
        if point.suppressed:
            return DASH
        if point.value is None:
            return NO_DATA
        if self.unit == Unit.PERCENT:
            return f"{point.value:.1f} %".replace(".", ",")
        if self.unit == Unit.HOURS:
            return f"{point.value:g} h".replace(".", ",")
        return f"{point.value:g}"

    def rows(self) -> list[tuple[str, list[str]]]:
        """The table under the chart: each category with one text per series."""
        return [
            (category, [self.text(series.points[index]) for series in self.series])
            for index, category in enumerate(self.categories)
        ]

    def svg(self) -> Markup:
        """The chart as inline SVG; every text goes through the XML serializer, so it is escaped."""
        return Markup(ET.tostring(_draw(self), encoding="unicode"))  # noqa: S704 - serialized by ElementTree


def _draw(chart: Chart) -> ET.Element:
    """The <svg> element: title and description first, then the legend and the bars."""
    top = LEGEND_HEIGHT if len(chart.series) > 1 or chart.any_suppressed else 6
    group = len(chart.series) * (ROW + ROW_GAP) + GROUP_GAP
    height = 60 if chart.empty else top + len(chart.categories) * group + 4
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {WIDTH} {height}",
            "width": str(WIDTH),
            "height": str(height),
            "role": "img",
            "aria-labelledby": f"{chart.key}-title {chart.key}-desc",
            "class": "chart",
        },
    )
    ET.SubElement(svg, "title", {"id": f"{chart.key}-title"}).text = chart.title
    ET.SubElement(svg, "desc", {"id": f"{chart.key}-desc"}).text = chart.description
    if chart.empty:
        _text(svg, WIDTH / 2, 34, NO_DATA, {"text-anchor": "middle", "class": "empty"})
        return svg
    _hatch(svg, chart.key)
    _legend(svg, chart)
    scale = _scale(chart)
    for index, category in enumerate(chart.categories):
        y = top + index * group
        _text(
            svg, LABEL_WIDTH - 8, y + ROW - 5, _short(category), {"text-anchor": "end", "class": "category"}
        )
        for number, series in enumerate(chart.series):
            row_y = y + number * (ROW + ROW_GAP)
            _bar(svg, chart, series.points[index], row_y, scale, number, f"{series.name}, {category}")
    return svg


def _bar(svg: ET.Element, chart: Chart, point: Point, y: float, scale: float, number: int, name: str) -> None:
    """One bar with its value at its end, or the hatched stub of a hidden figure."""
    bar = ET.SubElement(svg, "g", {"class": "suppressed" if point.suppressed else "bar"})
    ET.SubElement(bar, "title").text = f"{name}: {SUPPRESSED if point.suppressed else chart.text(point)}"
    if point.suppressed:
        rect = {"fill": f"url(#{chart.key}-hatch)", "stroke": "#555", "width": str(STUB)}
        ET.SubElement(bar, "rect", {"x": str(LABEL_WIDTH), "y": str(y), "height": str(ROW), **rect})
        _text(bar, LABEL_WIDTH + STUB + 4, y + ROW - 5, SUPPRESSED, {"class": "suppressed-label"})
        return
    width = (point.value or 0) * scale
    colour = PALETTE[number % len(PALETTE)]
    if width > 0:
        box = {"x": str(LABEL_WIDTH), "y": str(y), "width": f"{width:.1f}", "height": str(ROW)}
        ET.SubElement(bar, "rect", {**box, "fill": colour})
    _text(bar, LABEL_WIDTH + width + 4, y + ROW - 5, chart.text(point), {"class": "value"})


def _scale(chart: Chart) -> float:
    """Pixels per unit: percentages on a fixed 0-100 axis, other figures up to the largest published one."""
    room = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    if chart.unit == Unit.PERCENT:
        return room / 100
    largest = max((p.value or 0 for s in chart.series for p in s.points), default=0)
    return room / largest if largest > 0 else 0.0


def _hatch(svg: ET.Element, key: str) -> None:
    """The grey diagonal hatching of hidden figures."""
    defs = ET.SubElement(svg, "defs")
    pattern = ET.SubElement(
        defs,
        "pattern",
        {"id": f"{key}-hatch", "width": "6", "height": "6", "patternUnits": "userSpaceOnUse"},
    )
    ET.SubElement(pattern, "rect", {"width": "6", "height": "6", "fill": "#e6e6e6"})
    ET.SubElement(pattern, "path", {"d": "M0,6 L6,0", "stroke": "#777", "stroke-width": "1.5"})


def _legend(svg: ET.Element, chart: Chart) -> None:
    """A swatch per series (when there are several), and the hatching when a figure is hidden."""
    entries = [(PALETTE[n % len(PALETTE)], s.name) for n, s in enumerate(chart.series)]
    if len(chart.series) < 2:
        entries = []
    if chart.any_suppressed:
        entries.append((f"url(#{chart.key}-hatch)", SUPPRESSED))
    legend, x = ET.SubElement(svg, "g", {"class": "legend"}), 4.0
    for fill, name in entries:
        ET.SubElement(
            legend, "rect", {"x": f"{x:.0f}", "y": "4", "width": "12", "height": "12", "fill": fill}
        )
        _text(legend, x + 16, 14, _short(name), {"class": "legend-label"})
        x += 28 + 7 * len(_short(name))


def _text(parent: ET.Element, x: float, y: float, text: str, attributes: dict[str, str]) -> None:
    """A text element at (x, y)."""
    element = ET.SubElement(parent, "text", {"x": f"{x:.1f}", "y": f"{y:.1f}", **attributes})
    element.text = text


def _short(text: str) -> str:
    """A label cut to fit beside the bars (the table under the chart has it whole)."""
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


# ---------------------------------------------------------------------- the headline figures

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
