"""The web view in a real browser: login, CSRF refusal, roles, TOTP enrolment and logout."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import chromium, create_staff, new_page, require_chromium, sign_in
from tests.server import Service, running_service

PASSWORD = "una clave bastante larga"
MANAGER = "gestora@example.org"
ADMIN = "admin@example.org"


@dataclass(frozen=True)
class Site:
    """The running service and a browser to visit it with."""

    service: Service
    browser: Browser

    def page(self) -> Iterator[Page]:
        """A fresh profile on the service."""
        with new_page(self.browser, self.service.base_url) as page:
            yield page


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One service (with a manager and an admin) and one browser for the module."""
    require_chromium()
    with running_service(tmp_path_factory.mktemp("web"), log_level="INFO") as service:
        create_staff(service, MANAGER, PASSWORD, "manager")
        create_staff(service, ADMIN, PASSWORD, "admin")
        with chromium() as browser:
            yield Site(service, browser)


@pytest.fixture
def page(site: Site) -> Iterator[Page]:
    """A fresh browser profile."""
    yield from site.page()


def test_wrong_password_then_right_password_then_logout(page: Page) -> None:
    """The error is shown; the right password lands on the account page; logout ends the session."""
    sign_in(page, MANAGER, "not the password at all")
    expect(page.locator("[role=alert]")).to_have_text("Correo o contraseña incorrectos.")
    sign_in(page, MANAGER, PASSWORD)
    expect(page).to_have_url(re.compile(r"/account$"))
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
    expect(page).to_have_url(re.compile(r"/account$"))
    page.eval_on_selector("form[action='/logout'] input[name=csrf_token]", "f => { f.value = 'x'; }")
    page.click("#logout")
    expect(page.locator("#refusal")).to_contain_text("no se cambió nada")
    page.goto("/account")
    expect(page.locator("#account-email")).to_have_text(MANAGER)  # still signed in


def test_a_manager_is_refused_the_admin_pages(page: Page) -> None:
    """/admin/users answers 403 with a clear page."""
    sign_in(page, MANAGER, PASSWORD)
    expect(page).to_have_url(re.compile(r"/account$"))
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
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator("#account-totp")).to_have_text("activado")
