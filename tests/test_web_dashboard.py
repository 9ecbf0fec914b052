"""The statistics dashboard over HTTP: who may see it, the charts after real texts, and bad ranges."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from app.settings import Settings
from app.simulator import TextPhone, TwilioSigner
from app.web.dashboard import default_range
from tests.test_web_auth import add_user, login, quiet

SURVEY = ["hola", "1", "2", "1"]
"""Spanish, the survey from the main menu, consent; the next answer is the gender."""
ANSWERS = ["2", "1", "1", "2", "3", "4", "5", "1", "2", "*"]
"""Age 18-29, La Oroya, the seven perception questions, the open comment skipped."""
SVG = re.compile(r"<svg .*?</svg>", re.DOTALL)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The smallest cell size allowed, so a handful of texts already publishes some figures."""
    return settings.model_copy(update={"stats_min_cell": 3})


@pytest.fixture
async def web(client: httpx.AsyncClient, app: FastAPI) -> httpx.AsyncClient:
    """A manager signed in on a browser-like client."""
    quiet(app)
    await add_user(app)
    assert (await login(client)).headers["location"] == "/cases"
    return client


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
    """Before any call every count is 0, so below k: hatched "oculto", never a 0 bar; the web view's headers."""
    page = await web.get("/dashboard")
    assert page.status_code == 200
    assert '<a href="/dashboard">Estadísticas</a>' in (await web.get("/cases")).text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text
    charts = SVG.findall(page.text)
    assert len(charts) >= 7
    for chart in charts:
        root = ET.fromstring(chart)
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
    assert "<th scope=\"col\">Mujer</th>" in participants
    genders = _figure(page.text, "survey-genero")
    assert '<tr><th scope="row">Mujer</th><td>5</td></tr>' in genders
    assert "(total: 6)" in genders
    assert '<g class="bar"><title>Respuestas, Mujer: 5</title>' in genders
    for chart in SVG.findall(page.text):
        ET.fromstring(chart)


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
