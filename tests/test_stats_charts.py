"""The SVG chart builder: hidden figures drawn apart, text escaped, empty charts, well-formed XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from app.stats.charts import Chart, Point, Series, Unit
from app.stats.headlines import part_of
from app.stats.schemas import Figure

NS = "{http://www.w3.org/2000/svg}"


def chart(*points: Point, title: str = "Participantes", unit: Unit = Unit.COUNT) -> Chart:
    """A chart of one series over as many categories as points."""
    categories = tuple(f"p{index}" for index in range(len(points)))
    return Chart("c", title, "descripción", categories, (Series("Todas", points),), unit)


def test_a_hidden_figure_is_a_hatched_stub_labelled_oculto_never_a_zero_bar() -> None:
    """Hidden: hatched rect and "oculto"; zero: no rect and "0"; the table says "—" for hidden."""
    drawn = chart(Point(7), Point(None, suppressed=True), Point(0))
    root = parse(drawn.svg())
    hidden = root.findall(f"{NS}g[@class='suppressed']")
    assert len(hidden) == 1
    assert child(hidden[0], "rect").get("fill") == "url(#c-hatch)"
    assert child(hidden[0], "text").text == "oculto"
    bars = root.findall(f"{NS}g[@class='bar']")
    assert [child(bar, "text").text for bar in bars] == ["7", "0"]
    assert bars[1].find(f"{NS}rect") is None
    assert [cells for _, cells in drawn.rows()] == [["7"], ["—"], ["0"]]
    assert root.find(f"{NS}pattern") is None
    assert root.find(f"{NS}defs/{NS}pattern") is not None


def test_labels_are_escaped_and_the_svg_is_well_formed() -> None:
    """Markup in any label stays text; the chart has a title and description for screen readers."""
    evil = '<script>alert("x")</script> & co'
    drawn = Chart("e", evil, evil, (evil,), (Series(evil, (Point(3),)), Series("b", (Point(4),))))
    svg = str(drawn.svg())
    assert "<script>" not in svg
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "e-title e-desc"
    assert child(root, "title").text == evil
    assert child(root, "desc").text == evil


def test_empty_data_gives_a_sin_datos_chart() -> None:
    """No categories, or nothing published or hidden: one "sin datos" text and no bars."""
    for empty in (Chart("n", "t", "d", (), ()), chart(Point(None), Point(None))):
        root = parse(empty.svg())
        assert [text.text for text in root.iter(f"{NS}text")] == ["sin datos"]
        assert root.find(f"{NS}g") is None


def test_percentages_use_published_figures_only() -> None:
    """A share of a hidden part or whole is hidden; of a zero whole, no data; else one decimal."""
    assert part_of(Figure(value=4, suppressed=False), Figure(value=10, suppressed=False)) == Point(40.0)
    assert part_of(Figure(value=None, suppressed=True), Figure(value=10, suppressed=False)).suppressed
    assert part_of(Figure(value=4, suppressed=False), Figure(value=None, suppressed=True)).suppressed
    assert part_of(Figure(value=0, suppressed=False), Figure(value=0, suppressed=False)) == Point(None)
    shares = chart(Point(40.0), Point(None), unit=Unit.PERCENT)
    assert [cells for _, cells in shares.rows()] == [["40,0 %"], ["sin datos"]]


def test_long_labels_are_cut_in_the_svg_but_whole_in_the_table() -> None:
    """A long category fits beside the bars; the table keeps it whole."""
    name = "Santa Rosa de Sacco y alrededores del valle"
    drawn = Chart("l", "t", "d", (name,), (Series("s", (Point(5),)),))
    texts = [text.text or "" for text in parse(drawn.svg()).iter(f"{NS}text")]
    assert any(text.endswith("…") and name.startswith(text[:-1]) for text in texts)
    assert drawn.rows()[0][0] == name


def parse(svg: str) -> ET.Element:
    """Parse a chart (our own output: parsing it proves it is well-formed XML)."""
    return ET.fromstring(svg)  # noqa: S314 - the service's own SVG, not untrusted input


def child(element: ET.Element, tag: str) -> ET.Element:
    """The first SVG child with this tag (failing the test when there is none)."""
    found = element.find(f"{NS}{tag}")
    assert found is not None, tag
    return found
