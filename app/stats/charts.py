"""Charts of published figures, drawn on the server as accessible SVG (no script, nothing from a CDN).

A chart is plain data (categories, series of points) so the same figures also make the table under it
and the terminal table of ``rimay stats``. A suppressed point is drawn as a hatched stub labelled
"oculto", never as a zero bar.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from markupsafe import Markup

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
