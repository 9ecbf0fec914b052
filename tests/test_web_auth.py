"""The web view's sign-in: passwords, sessions, CSRF, throttling, TOTP, roles and security headers."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import httpx
import pyotp
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import text

from app.db.base import utcnow
from app.db.engine import make_sync_engine
from app.staff.models import Role, StaffUser
from app.staff.passwords import Passwords
from app.staff.service import StaffSecrets, StaffService
from app.staff.totp import new_seed
from tests.conftest import count_rows

PASSWORD = "correct horse battery"
MANAGER = "gestora@example.org"
ADMIN = "admin@example.org"
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Sleeps(list[float]):
    """Records the login delays instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps(app: FastAPI) -> Sleeps:
    """The app's login delays, recorded; its password hashing made cheap for speed."""
    return quiet(app)


def quiet(app: FastAPI) -> Sleeps:
    """Record the app's login delays instead of waiting, and hash passwords cheaply."""
    recorder = Sleeps()
    app.state.web.sleep = recorder
    master = app.state.settings.master_secret
    app.state.web.secrets = StaffSecrets.from_master(master, Passwords(FAST_HASHER))
    return recorder


@pytest.fixture
def web(client: httpx.AsyncClient, sleeps: Sleeps) -> httpx.AsyncClient:
    """A browser-like client on the app (cookies kept between requests), without login delays."""
    return client


async def add_user(
    app: FastAPI, email: str = MANAGER, role: Role = Role.MANAGER, *, seed: str | None = None
) -> StaffUser:
    """A committed account; with ``seed`` its TOTP is already confirmed."""
    async with app.state.sessionmaker() as db:
        service = StaffService(db, app.state.web.secrets)
        user = await service.create(email, PASSWORD, role.value)
        if seed is not None:
            user.totp_secret = app.state.web.secrets.totp.seal(user.id, seed)
            user.totp_confirmed_at = utcnow()
        await db.commit()
        return user


def token_in(page: httpx.Response) -> str:
    """The CSRF token of the page's first form."""
    match = TOKEN_FIELD.search(page.text)
    assert match, page.text
    return match.group(1)


async def login(web: httpx.AsyncClient, email: str = MANAGER, password: str = PASSWORD) -> httpx.Response:
    """Open the login page and submit it, as a browser would."""
    form = await web.get("/login")
    data = {"csrf_token": token_in(form), "email": email, "password": password}
    return await web.post("/login", data=data)


async def post_form(web: httpx.AsyncClient, page: str, action: str, **fields: str) -> httpx.Response:
    """Submit a form with the CSRF token from ``page``."""
    token = token_in(await web.get(page))
    return await web.post(action, data={"csrf_token": token, **fields})


def sql(database_url: str, statement: str) -> list[tuple[object, ...]]:
    """Run SQL on the test database through its own connection."""
    engine = make_sync_engine(database_url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


async def test_pages_carry_the_security_headers(web: httpx.AsyncClient) -> None:
    """CSP, framing, referrer, sniffing and caching headers on pages; /docs keeps its own."""
    page = await web.get("/login")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    for part in ("default-src 'self'", "media-src 'self' blob:", "frame-ancestors 'none'"):
        assert part in csp
    assert "form-action 'self'" in csp
    assert "base-uri 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert '<meta name="viewport"' in page.text
    assert "<script" not in page.text
    css = await web.get("/static/web/style.css")
    assert css.status_code == 200
    assert css.headers["x-frame-options"] == "DENY"
    docs = await web.get("/docs")
    assert docs.status_code == 200
    assert "content-security-policy" not in docs.headers


async def test_wrong_password_is_refused_and_counted_under_a_hash(
    web: httpx.AsyncClient, app: FastAPI, sleeps: Sleeps, database_url: str
) -> None:
    """401 with a message, a delay, an audit entry naming the account, no plaintext in throttle rows."""
    await add_user(app)
    page = await login(web, MANAGER.upper(), "wrong password here")
    assert page.status_code == 401
    assert "Correo o contraseña incorrectos." in page.text
    assert "rimay_staff" not in web.cookies
    assert sleeps == [0.25]
    rows = sql(database_url, "SELECT bucket, key FROM throttle_events ORDER BY bucket")
    assert [row[0] for row in rows] == ["login_account", "login_ip"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", str(row[1])) for row in rows)
    assert MANAGER not in repr(rows)
    audit = sql(database_url, "SELECT actor, action, detail FROM audit_log")
    assert audit == [(MANAGER, "login_failed", "password")]
    assert PASSWORD not in repr(audit)
    assert "wrong password" not in repr(audit)


async def test_unknown_account_is_refused_and_its_address_not_kept(
    web: httpx.AsyncClient, database_url: str
) -> None:
    """Same message as a wrong password; the audit actor is "unknown", never the typed address."""
    page = await login(web, "nobody@example.org")
    assert page.status_code == 401
    assert "Correo o contraseña incorrectos." in page.text
    assert sql(database_url, "SELECT actor, action FROM audit_log") == [("unknown", "login_failed")]


async def test_inactive_account_is_refused_even_with_the_right_password(
    web: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    """A deactivated account cannot sign in."""
    user = await add_user(app)
    sql(database_url, f"UPDATE staff_users SET active = false WHERE id = {user.id}")  # noqa: S608
    page = await login(web)
    assert page.status_code == 401
    assert count_rows(database_url, "staff_sessions") == 0


async def test_right_password_starts_a_hashed_session_with_safe_cookie_flags(
    web: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    """303 to the case queue; HttpOnly, SameSite=Lax, Secure; the table holds only the token's hash."""
    await add_user(app)
    web.cookies.set("rimay_staff", "planted-by-an-attacker", domain="hotline.example.org")
    done = await login(web)
    assert done.status_code == 303
    assert done.headers["location"] == "/cases"
    cookie = done.headers["set-cookie"]
    assert "rimay_staff=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" in cookie
    token = web.cookies.get("rimay_staff")
    assert token is not None
    assert token != "planted-by-an-attacker"
    ids = [row[0] for row in sql(database_url, "SELECT id FROM staff_sessions")]
    assert ids == [hashlib.sha256(token.encode()).hexdigest()]
    account = await web.get("/account")
    assert account.status_code == 200
    assert MANAGER in account.text
    entries = sql(database_url, "SELECT actor, action FROM audit_log")
    assert entries == [(MANAGER, "login_ok")]


async def test_a_second_login_rotates_the_session(
    web: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    """Logging in again replaces the browser's session: the old token stops working."""
    await add_user(app)
    await login(web)
    first = sql(database_url, "SELECT id FROM staff_sessions")
    await login(web)
    second = sql(database_url, "SELECT id FROM staff_sessions")
    assert len(second) == 1
    assert second != first


async def test_many_failures_for_one_account_are_refused_and_slowed(
    web: httpx.AsyncClient, app: FastAPI, sleeps: Sleeps
) -> None:
    """After five failures even the right password gets 429 and a wait; delays grow and are bounded."""
    await add_user(app)
    for _ in range(5):
        assert (await login(web, password="not the password")).status_code == 401
    refused = await login(web)
    assert refused.status_code == 429
    assert "Espere 15 minutos" in refused.text
    assert sleeps == [0.25, 0.5, 0.75, 1.0, 1.25, 1.25]
    assert "rimay_staff" not in web.cookies


async def test_many_failures_from_one_address_are_refused(
    web: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    """Five failures on five addresses from one IP block a sixth, correct login."""
    await add_user(app)
    for number in range(5):
        await login(web, f"guess{number}@example.org")
    assert (await login(web)).status_code == 429
    assert count_rows(database_url, "staff_sessions") == 0


async def test_old_failures_stop_counting_and_are_deleted(
    web: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    """Failures older than 15 minutes neither count nor stay in the table."""
    await add_user(app)
    for _ in range(5):
        await login(web, password="not the password")
    old = (utcnow() - timedelta(minutes=16)).isoformat(sep=" ")
    sql(database_url, f"UPDATE throttle_events SET created_at = '{old}'")  # noqa: S608
    assert (await login(web, password="not the password")).status_code == 401
    assert count_rows(database_url, "throttle_events") == 2
    assert (await login(web)).status_code == 303


@pytest.mark.parametrize(
    ("column", "moved"),
    [("last_seen_at", timedelta(minutes=-31)), ("expires_at", timedelta(seconds=-1))],
    ids=["idle", "absolute"],
)
async def test_an_expired_session_sends_back_to_login(
    web: httpx.AsyncClient, app: FastAPI, database_url: str, column: str, moved: timedelta
) -> None:
    """Idle past 30 minutes, or past the lifetime: redirect with a message, row deleted, cookie dropped."""
    await add_user(app)
    await login(web)
    moment = (utcnow() + moved).isoformat(sep=" ")
    sql(database_url, f"UPDATE staff_sessions SET {column} = '{moment}'")  # noqa: S608
    page = await web.get("/account")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?m=expired"
    assert count_rows(database_url, "staff_sessions") == 0
    assert "Su sesión terminó" in (await web.get("/login?m=expired")).text


async def test_no_cookie_sends_to_login(web: httpx.AsyncClient) -> None:
    """A page without a session redirects to the login form, without the expiry message."""
    page = await web.get("/account")
    assert page.status_code == 303
    assert page.headers["location"] == "/login"


@pytest.mark.parametrize(
    "token", [None, "", "forged.0000", "other"], ids=["missing", "empty", "forged", "other"]
)
async def test_login_without_its_csrf_token_is_refused(
    web: httpx.AsyncClient, app: FastAPI, database_url: str, token: str | None
) -> None:
    """403 page, no session, no failure counted, when the form does not repeat the signed cookie."""
    await add_user(app)
    await web.get("/login")
    data = {"email": MANAGER, "password": PASSWORD}
    if token == "other":  # a well-signed token from another browser
        other = httpx.AsyncClient(transport=web._transport, base_url=str(web.base_url))
        token = token_in(await other.get("/login"))
        await other.aclose()
    if token is not None:
        data["csrf_token"] = token
    page = await web.post("/login", data=data)
    assert page.status_code == 403
    assert "Formulario rechazado" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert count_rows(database_url, "staff_sessions") == 0
    assert count_rows(database_url, "throttle_events") == 0


async def test_login_form_without_its_cookie_is_refused(web: httpx.AsyncClient, app: FastAPI) -> None:
    """The right token but no cookie (a cross-site post) is refused."""
    await add_user(app)
    token = token_in(await web.get("/login"))
    web.cookies.clear()
    page = await web.post("/login", data={"csrf_token": token, "email": MANAGER, "password": PASSWORD})
    assert page.status_code == 403


@pytest.mark.parametrize("token", [None, "0" * 64], ids=["missing", "wrong"])
async def test_signed_in_forms_without_the_session_token_change_nothing(
    web: httpx.AsyncClient, app: FastAPI, database_url: str, token: str | None
) -> None:
    """Logout and account creation refuse a missing or wrong token with 403 and keep everything."""
    await add_user(app, ADMIN, Role.ADMIN, seed=new_seed())
    await login(web, ADMIN)
    sql(database_url, "UPDATE staff_sessions SET second_factor_done = true")
    data = {} if token is None else {"csrf_token": token}
    assert (await web.post("/logout", data=data)).status_code == 403
    fields = {"email": "new@example.org", "role": "manager", "password": PASSWORD, **data}
    refused = await web.post("/admin/users", data=fields)
    assert refused.status_code == 403
    assert "no se cambió nada" in refused.text
    assert count_rows(database_url, "staff_sessions") == 1
    assert count_rows(database_url, "staff_users") == 1
    assert (await web.get("/logout")).status_code == 405


async def test_logout_deletes_the_session(web: httpx.AsyncClient, app: FastAPI, database_url: str) -> None:
    """The row goes, the cookie is dropped, and the audit log notes it."""
    await add_user(app)
    await login(web)
    done = await post_form(web, "/account", "/logout")
    assert done.status_code == 303
    assert done.headers["location"] == "/login?m=logged_out"
    assert count_rows(database_url, "staff_sessions") == 0
    assert (await web.get("/account")).headers["location"] == "/login"
    actions = [row[0] for row in sql(database_url, "SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["login_ok", "logout"]


async def test_a_manager_is_refused_admin_pages(web: httpx.AsyncClient, app: FastAPI) -> None:
    """403 page on the admin pages, GET and POST alike."""
    await add_user(app)
    await login(web)
    for path in ("/admin/users", "/admin/audit"):
        page = await web.get(path)
        assert page.status_code == 403
        assert "Acceso denegado" in page.text
    token = token_in(await web.get("/account"))
    assert (await web.post("/admin/users/1/deactivate", data={"csrf_token": token})).status_code == 403


async def test_an_admin_must_enrol_totp_before_anything_else(
    web: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    """Password, then the enrolment page; a wrong code is refused; a right one opens the admin pages."""
    await add_user(app, ADMIN, Role.ADMIN)
    assert (await login(web, ADMIN)).headers["location"] == "/account/totp"
    for path in ("/account", "/admin/users", "/login/totp"):
        assert (await web.get(path)).headers["location"] == "/account/totp"
    await post_form(web, "/account/totp", "/account/totp/start")
    page = await web.get("/account/totp")
    seed = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
    assert seed
    assert "otpauth://totp/Rimay:admin%40example.org?secret=" in page.text
    stored = sql(database_url, "SELECT totp_secret FROM staff_users")[0][0]
    assert isinstance(stored, bytes)
    assert seed.group(1).encode() not in stored
    wrong = await post_form(web, "/account/totp", "/account/totp/confirm", code="000000")
    assert wrong.status_code == 400
    assert "Código incorrecto" in wrong.text
    code = pyotp.TOTP(seed.group(1)).now()
    done = await post_form(web, "/account/totp", "/account/totp/confirm", code=code)
    assert done.headers["location"] == "/account?m=enrolled"
    assert (await web.get("/admin/users")).status_code == 200
    actions = [row[0] for row in sql(database_url, "SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["login_failed", "totp_enrolled", "login_ok"]


async def test_an_enrolled_account_needs_a_fresh_code(
    web: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    """After the password: a wrong code is refused, a right one signs in, the same one again is refused."""
    seed = new_seed()
    await add_user(app, seed=seed)
    assert (await login(web)).headers["location"] == "/login/totp"
    assert (await web.get("/account")).headers["location"] == "/login/totp"
    wrong = await post_form(web, "/login/totp", "/login/totp", code="123456")
    assert wrong.status_code == 401
    assert "Código incorrecto" in wrong.text
    code = pyotp.TOTP(seed).now()
    assert (await post_form(web, "/login/totp", "/login/totp", code=code)).headers["location"] == "/cases"
    assert (await web.get("/account")).status_code == 200
    await login(web)
    replay = await post_form(web, "/login/totp", "/login/totp", code=code)
    assert replay.status_code == 401
    assert (await web.get("/account")).headers["location"] == "/login/totp"


async def test_a_manager_promoted_to_admin_must_enrol_first(
    web: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    """An admin without a confirmed TOTP is sent to the enrolment page, even mid-session."""
    await add_user(app)
    await login(web)
    sql(database_url, "UPDATE staff_users SET role = 'admin'")
    for path in ("/account", "/admin/users"):
        assert (await web.get(path)).headers["location"] == "/account/totp"
    assert (await web.get("/account/totp")).status_code == 200
