"""The statistics dashboard over HTTP: who may see it, the charts after real texts, and bad ranges."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect

from app.settings import Settings
from app.simulator import TextPhone, TwilioSigner
from app.web.dashboard import default_range
from tests.browser import chromium, create_staff, new_page, require_chromium, sign_in
from tests.conftest import AUTH_TOKEN
from tests.server import running_service
from tests.test_web_auth import MANAGER, PASSWORD
from tests.web_cases_support import web

SURVEY = ["hola", "1", "2", "1"]
"""Spanish, the survey from the main menu, consent; the next answer is the gender."""
ANSWERS = ["2", "1", "1", "2", "3", "4", "5", "1", "2", "*"]
"""Age 18-29, La Oroya, the seven perception questions, the open comment skipped."""
SVG = re.compile(r"<svg .*?</svg>", re.DOTALL)
__all__ = ["web"]  # the signed-in manager, shared with the case pages' tests


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The smallest cell size allowed, so a handful of texts already publishes some figures."""
    return settings.model_copy(update={"stats_min_cell": 3})


async def text_survey(client: httpx.AsyncClient, signer: TwilioSigner, genders: list[str]) -> None:
    """One phone per gender key answers the profile; the first one answers the whole survey."""
    for number, gender in enumerate(genders):
        phone = TextPhone(client=client, signer=signer, sender=f"+5190000{number:04d}")
        for body in [*SURVEY, gender, *(ANSWERS if number == 0 else [])]:
            assert await phone.text(body), body


async def test_signed_out_is_sent_to_login(client: httpx.AsyncClient) -> None:
    """No session, no figures: the same redirect as every other page."""
    page = await client.get("/dashboard")
    assert page.status_code == 303
    assert page.headers["location"] == "/login"


async def test_a_manager_sees_empty_charts_with_the_security_headers(web: httpx.AsyncClient) -> None:
    """Before any call every count is 0, below k: hatched "oculto", never a 0 bar; with the usual headers."""
    page = await web.get("/dashboard")
    assert page.status_code == 200
    assert '<a href="/dashboard">Estadísticas</a>' in (await web.get("/cases")).text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text
    charts = SVG.findall(page.text)
    assert len(charts) >= 7
    for chart in charts:
        root = parse(chart)
        assert root.find("{http://www.w3.org/2000/svg}title") is not None
    assert '<g class="bar">' not in page.text
    assert page.text.count('<g class="suppressed">') >= len(charts)
    shown = default_range(datetime.now(ZoneInfo("America/Lima")).date())
    assert f'name="from" value="{shown.first}"' in page.text  # this month and the five before it
    assert shown.first.day == 1
    assert (shown.last - shown.first).days > 150


async def test_texts_become_charts_with_hidden_figures_labelled(
    web: httpx.AsyncClient, client: httpx.AsyncClient, signer: TwilioSigner
) -> None:
    """Five women and one man text in: women are counted, the lone man is hatched "oculto" and "—"."""
    await text_survey(client, signer, ["1", "1", "1", "1", "1", "2"])
    page = await web.get("/dashboard")
    assert page.status_code == 200
    participants = _figure(page.text, "participants")
    assert '<g class="suppressed"><title>Hombre, ' in participants
    assert ">oculto</text>" in participants
    assert '<td class="hidden" title="oculto">—</td>' in participants
    assert '<th scope="col">Mujer</th>' in participants
    genders = _figure(page.text, "survey-genero")
    assert '<tr><th scope="row">Mujer</th><td>5</td></tr>' in genders
    assert "(total: 6)" in genders
    assert '<g class="bar"><title>Respuestas, Mujer: 5</title>' in genders
    for chart in SVG.findall(page.text):
        parse(chart)


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("from=2025-13-01", "Fecha no válida"),
        ("to=ayer", "Fecha no válida"),
        ("from=2025-05-02&to=2025-05-01", "Rango no válido"),
        ("period=year", "Periodo no válido"),
        ("from=2020-01-01&to=2025-01-01", "Rango demasiado largo"),
        ("from=2025-01-01&to=2025-04-30&period=day", "Rango demasiado largo"),
    ],
    ids=["bad-month", "not-a-date", "backwards", "unknown-period", "too-many-days", "too-many-periods"],
)
async def test_a_bad_range_gets_a_page_saying_why(web: httpx.AsyncClient, query: str, title: str) -> None:
    """400 with the reason, never a 500 or a silently different range."""
    page = await web.get(f"/dashboard?{query}")
    assert page.status_code == 400
    assert title in page.text


async def test_a_chosen_range_by_week(web: httpx.AsyncClient) -> None:
    """The form's range and period are used: weeks are named by their Monday."""
    monday = date(2025, 3, 3)
    page = await web.get(f"/dashboard?from={monday}&to={monday + timedelta(days=20)}&period=week")
    assert page.status_code == 200
    assert "semana del 3 mar 2025" in page.text
    assert "semana del 17 mar 2025" in page.text
    assert '<option value="week" selected>' in page.text


def _figure(page: str, key: str) -> str:
    """The <figure> of one chart (its SVG, caption and table)."""
    match = re.search(rf'<figure class="chart-figure" id="chart-{key}">.*?</figure>', page, re.DOTALL)
    assert match, key
    return match.group(0)


def test_a_manager_sees_the_charts_in_a_real_browser(tmp_path: Path) -> None:
    """Chromium: after real texts the SVG charts show, a hidden bar reads "oculto"; a screenshot is taken."""
    require_chromium()
    with running_service(tmp_path / "web", env={"RIMAY_STATS_MIN_CELL": "3"}) as service:
        create_staff(service, MANAGER, PASSWORD, "manager")
        asyncio.run(_text_the_service(service.base_url))
        with chromium() as browser, new_page(browser, service.base_url) as page:
            sign_in(page, MANAGER, PASSWORD)
            page.click("text=Estadísticas")
            expect(page).to_have_url(re.compile(r"/dashboard$"))
            expect(page.locator("h1")).to_have_text("Estadísticas")
            expect(page.locator("#chart-participants svg.chart")).to_be_visible()
            expect(page.locator("#chart-survey-genero svg.chart")).to_be_visible()
            assert page.locator("svg.chart").count() >= 7
            hidden = page.locator("#chart-participants g.suppressed text.suppressed-label").first
            expect(hidden).to_be_visible()
            expect(hidden).to_have_text("oculto")
            expect(page.locator("#chart-survey-genero g.bar text.value").first).to_have_text("5")
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=shot, full_page=True)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000


async def _text_the_service(base_url: str) -> None:
    """Six phones text the running service: five women and one man, the first answering everything."""
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as client:
        await text_survey(client, TwilioSigner(AUTH_TOKEN, base_url), ["1", "1", "1", "1", "1", "2"])


def parse(svg: str) -> ET.Element:
    """Parse a chart (our own output: parsing it proves it is well-formed XML)."""
    return ET.fromstring(svg)  # noqa: S314 - the service's own SVG, not untrusted input
