"""The web view in a real browser: login, CSRF refusal, roles, TOTP enrolment, logout, and working cases."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyotp
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from app.cases.audio import transcode
from app.settings import Settings
from tests.browser import chromium, create_staff, new_page, require_chromium, sign_in
from tests.outbound import sessions_for
from tests.samples import wav
from tests.server import Service, running_service
from tests.web_cases_support import Seeded, seed_case

PASSWORD = "una clave bastante larga"
MANAGER = "gestora@example.org"
ADMIN = "admin@example.org"


@dataclass(frozen=True)
class Site:
    """The running service and a browser to visit it with."""

    service: Service
    browser: Browser
    cases: dict[str, Seeded] = field(default_factory=dict)

    def page(self) -> Iterator[Page]:
        """A fresh profile on the service."""
        with new_page(self.browser, self.service.base_url) as page:
            yield page


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One service (with a manager, an admin and seeded cases) and one browser for the module."""
    require_chromium()
    with running_service(tmp_path_factory.mktemp("web"), log_level="INFO") as service:
        create_staff(service, MANAGER, PASSWORD, "manager")
        create_staff(service, ADMIN, PASSWORD, "admin")
        cases = asyncio.run(_seed(service))
        with chromium() as browser:
            yield Site(service, browser, cases)


async def _seed(service: Service) -> dict[str, Seeded]:
    """Cases in the service's own SQLite file, as the line leaves them: a voice one has a stored MP3."""
    settings = Settings(data_dir=service.data_dir, database_url=None)
    mp3 = await transcode(wav(2.0))
    cases: dict[str, Seeded] = {}
    async with sessions_for(settings.sqlalchemy_url) as sessions:
        for name, values in (
            ("quechua", {"language": "qu", "channel": "voice", "topic": "water", "text": None}),
            ("spanish", {"language": "es", "topic": "land", "text": "<script>window.pwned = 1</script>¿Y?"}),
            ("pending", {"language": "qu", "channel": "voice", "topic": "health", "text": None}),
            ("closed", {"language": "es", "topic": "jobs", "status": "closed"}),
        ):
            async with sessions() as db:
                recording = {"quechua": "stored", "pending": "pending"}.get(name)
                cases[name] = await seed_case(db, settings, recording=recording, audio=mp3, **values)
    return cases


@pytest.fixture
def page(site: Site) -> Iterator[Page]:
    """A fresh browser profile."""
    yield from site.page()


def test_wrong_password_then_right_password_then_logout(page: Page) -> None:
    """The error is shown; the right password lands on the account page; logout ends the session."""
    sign_in(page, MANAGER, "not the password at all")
    expect(page.locator("[role=alert]")).to_have_text("Correo o contraseña incorrectos.")
    sign_in(page, MANAGER, PASSWORD)
    expect(page).to_have_url(re.compile(r"/cases$"))
    page.click("text=Mi cuenta")
    expect(page.locator("#account-email")).to_have_text(MANAGER)
    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/login\?m=logged_out$"))
    expect(page.locator("[role=status]")).to_have_text("Cerró su sesión.")
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_a_tampered_csrf_field_gets_the_refusal_page(page: Page) -> None:
    """Changing the hidden token of a form (login or logout) gives 403 and changes nothing."""
    page.goto("/login")
    page.fill("#email", MANAGER)
    page.fill("#password", PASSWORD)
    page.eval_on_selector("input[name=csrf_token]", "field => { field.value = 'forged.token'; }")
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as sent:
        page.click("button[type=submit]")
    assert sent.value.status == 403
    expect(page.locator("h1")).to_have_text("Formulario rechazado")
    sign_in(page, MANAGER, PASSWORD)
    expect(page).to_have_url(re.compile(r"/cases$"))
    page.eval_on_selector("form[action='/logout'] input[name=csrf_token]", "f => { f.value = 'x'; }")
    page.click("#logout")
    expect(page.locator("#refusal")).to_contain_text("no se cambió nada")
    page.goto("/account")
    expect(page.locator("#account-email")).to_have_text(MANAGER)  # still signed in


def test_a_manager_is_refused_the_admin_pages(page: Page) -> None:
    """/admin/users answers 403 with a clear page."""
    sign_in(page, MANAGER, PASSWORD)
    expect(page).to_have_url(re.compile(r"/cases$"))
    response = page.goto("/admin/users")
    assert response is not None
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Acceso denegado")


def test_an_admin_enrols_totp_and_then_signs_in_with_a_code(page: Page) -> None:
    """Password, enrolment with a code pyotp computes, the admin pages; next login asks for a code."""
    sign_in(page, ADMIN, PASSWORD)
    expect(page).to_have_url(re.compile(r"/account/totp$"))
    page.click("#start-enrolment")
    seed = page.locator("#totp-secret").inner_text()
    expect(page.locator("#totp-uri")).to_contain_text("otpauth://totp/Rimay:admin%40example.org")
    totp = pyotp.TOTP(seed)
    page.fill("#code", totp.now())
    page.click("text=Confirmar")
    expect(page.locator("[role=status]")).to_have_text("Segundo factor activado.")
    page.goto("/admin/users")
    expect(page.locator("table")).to_contain_text(MANAGER)
    page.goto("/admin/audit")
    expect(page.locator("table")).to_contain_text("totp_enrolled")
    page.click("#logout")
    sign_in(page, ADMIN, PASSWORD)
    expect(page).to_have_url(re.compile(r"/login/totp$"))
    page.fill("#code", totp.at(time.time() + 30))  # the next step's code: the last one is spent
    page.click("text=Verificar")
    expect(page).to_have_url(re.compile(r"/cases$"))
    page.goto("/account")
    expect(page.locator("#account-totp")).to_have_text("activado")


def _row(page: Page, case: Seeded) -> Locator:
    return page.locator(f"#queue tr[data-case='{case.case_id}']")


def test_the_queue_and_its_filters(site: Site, page: Page) -> None:
    """Open cases by default, with "recording pending"; language and status filters narrow the list."""
    quechua, spanish, pending, closed = (site.cases[n] for n in ("quechua", "spanish", "pending", "closed"))
    sign_in(page, MANAGER, PASSWORD)
    expect(page).to_have_url(re.compile(r"/cases$"))
    for shown in (quechua, spanish, pending):
        expect(_row(page, shown)).to_contain_text(shown.code)
    expect(_row(page, closed)).to_have_count(0)
    expect(_row(page, pending)).to_contain_text("grabación pendiente")
    expect(_row(page, quechua)).not_to_contain_text("grabación pendiente")
    page.select_option("#f-language", "qu")
    page.click("#apply-filters")
    expect(page).to_have_url(re.compile(r"language=qu"))
    expect(_row(page, quechua)).to_be_visible()
    expect(_row(page, spanish)).to_have_count(0)
    page.select_option("#f-language", "")
    page.select_option("#f-status", "closed")
    page.click("#apply-filters")
    expect(_row(page, closed)).to_contain_text("Cerrado")
    expect(_row(page, quechua)).to_have_count(0)
    page.click("#count-all")
    for shown in (quechua, spanish, pending, closed):
        expect(_row(page, shown)).to_have_count(1)


def _loads(page: Page, selector: str) -> None:
    """The <audio> element fetched the file and read its metadata (so the browser can play it)."""
    page.wait_for_function(
        "s => { const a = document.querySelector(s); return a && a.readyState >= 1 && a.duration > 0; }",
        arg=selector,
    )


def test_play_the_recording_then_answer_by_uploaded_and_recorded_voice(site: Site, page: Page) -> None:
    """The caller's MP3 plays; an uploaded WAV and a MediaRecorder take both become playable answers."""
    case = site.cases["quechua"]
    sign_in(page, MANAGER, PASSWORD)
    page.click(f"text={case.code}")
    expect(page.locator("#case-language")).to_have_text("qu")
    _loads(page, "audio.recording")
    page.eval_on_selector("audio.recording", "a => a.play()")
    page.wait_for_function("() => document.querySelector('audio.recording').currentTime > 0")
    expect(page.locator("#text-unheard")).to_contain_text("grabe una respuesta de voz")
    page.set_input_files("#answer-audio", {"name": "respuesta.wav", "mimeType": "audio/wav", "buffer": wav()})
    page.click("#send-voice")
    expect(page.locator("[role=status]").first).to_have_text(re.compile("Respuesta guardada"))
    expect(page.locator("#case-status")).to_have_text("Respondido")
    _loads(page, "audio.answer-audio")
    page.click("#record-start")
    expect(page.locator("#record-state")).to_have_text("Grabando…")
    page.wait_for_timeout(1500)
    page.click("#record-stop")
    expect(page.locator("#record-preview")).to_be_visible()
    page.click("#send-voice")
    expect(page.locator("audio.answer-audio")).to_have_count(2)
    _loads(page, "li.answer:nth-child(2) audio.answer-audio")
    expect(page.locator("#timeline")).to_contain_text("Respondido por voz")


def test_answer_by_text_see_the_question_escaped_and_close(site: Site, page: Page) -> None:
    """The SMS question's markup is shown as text and never runs; a text answer; closing the case."""
    case = site.cases["spanish"]
    sign_in(page, MANAGER, PASSWORD)
    page.goto(f"/cases/{case.case_id}")
    expect(page.locator("blockquote.sms-text")).to_have_text("<script>window.pwned = 1</script>¿Y?")
    assert page.evaluate("() => window.pwned === undefined")
    page.click("#assign")
    expect(page.locator("#case-assignee")).to_have_text(MANAGER)
    page.fill("#answer-text", "La consulta es el 3 de mayo en la plaza.")
    page.click("#text-answer button[type=submit]")
    expect(page.locator("blockquote.answer-text")).to_have_text("La consulta es el 3 de mayo en la plaza.")
    page.fill("#note-text", "Llamar a la municipalidad.")
    page.click("#note-form button[type=submit]")
    expect(page.locator("#notes")).to_contain_text("Llamar a la municipalidad.")
    page.click("#close")
    expect(page.locator("[role=status]").first).to_have_text("Caso cerrado.")
    expect(page.locator("#case-status")).to_have_text("Cerrado")
    expect(page.locator("#close")).to_have_count(0)
    expect(page.locator("#timeline")).to_contain_text("Cerrado")
