"""Admin pages for partner API keys and news broadcasts: admins only, CSRF, shown-once keys, 422s."""

from __future__ import annotations

import hashlib
import re

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from app.settings import Settings
from app.simulator import TextPhone, TwilioSigner
from app.staff.models import Role
from app.staff.totp import new_seed
from tests.conftest import count_rows
from tests.outbound import outbound_settings
from tests.test_web_auth import ADMIN, add_user, login, post_form, quiet, sql, token_in

SPANISH, SPANISH_TOO, QUECHUA = "+51965000011", "+51965000012", "+51965000013"
NUMBERS = (SPANISH, SPANISH_TOO, QUECHUA)
PACKAGES = "/api/v1/flow-results/packages"
KEY = re.compile(r'id="new-key-value">(rimay_[a-z0-9]{8}_[A-Za-z0-9_-]+)<')
NEWS = "Asamblea comunal el sábado a las 9."


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """An account that can send SMS, so news can be queued."""
    return outbound_settings(settings)


@pytest.fixture
async def admin(client: httpx.AsyncClient, app: FastAPI) -> httpx.AsyncClient:
    """An admin signed in with password and a fresh TOTP code."""
    quiet(app)
    seed = new_seed()
    await add_user(app, ADMIN, Role.ADMIN, seed=seed)
    assert (await login(client, ADMIN)).headers["location"] == "/login/totp"
    done = await post_form(client, "/login/totp", "/login/totp", code=pyotp.TOTP(seed).now())
    assert done.status_code == 303
    return client


def assert_no_number(*pages: httpx.Response) -> None:
    """No subscriber's number, in any common spelling, on any page."""
    for page in pages:
        for number in NUMBERS:
            for needle in (number, number[1:], number[3:], "%2B" + number[1:]):
                assert needle not in page.text


def audit_rows(database_url: str, prefix: str) -> list[tuple[object, ...]]:
    """Audit entries whose action starts with ``prefix``, oldest first."""
    return sql(
        database_url,
        f"SELECT actor, action, detail FROM audit_log WHERE action LIKE '{prefix}%' ORDER BY id",  # noqa: S608
    )


async def create_key(admin: httpx.AsyncClient, name: str = "ONG Agua", *scopes: str) -> httpx.Response:
    """Submit the new-key form with the page's CSRF token."""
    token = token_in(await admin.get("/admin/keys"))
    data = {"csrf_token": token, "name": name, "scope": list(scopes or ("results:read",))}
    return await admin.post("/admin/keys", data=data)


# ---------------------------------------------------------------------------------------------- keys


async def test_a_key_is_shown_once_works_and_stops_working_when_revoked(
    admin: httpx.AsyncClient, database_url: str
) -> None:
    """The key is on the creation page only; only its SHA-256 is stored; revoked keys get 401."""
    empty = await admin.get("/admin/keys")
    assert empty.status_code == 200
    assert "Todavía no hay claves." in empty.text
    created = await create_key(admin, "ONG <b>Agua</b>", "results:read", "stats:read")
    assert created.status_code == 201
    assert "location" not in created.headers
    assert "no se volverá a mostrar" in created.text
    assert "ONG &lt;b&gt;Agua&lt;/b&gt;" in created.text
    match = KEY.search(created.text)
    assert match, created.text
    key = match.group(1)
    ((key_id, prefix, key_hash, scopes),) = sql(
        database_url, "SELECT id, prefix, key_hash, scopes FROM api_keys"
    )
    assert key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(f"rimay_{prefix}_")
    assert "results:read" in str(scopes)
    assert "stats:read" in str(scopes)
    listing = await admin.get("/admin/keys")
    assert key not in listing.text
    assert key_hash not in listing.text
    assert f"<code>{prefix}</code>" in listing.text
    assert "results:read, stats:read" in listing.text
    assert "<td>nunca</td>" in listing.text
    assert "<td>activa</td>" in listing.text
    assert (await admin.get(PACKAGES, headers={"Authorization": f"Bearer {key}"})).status_code == 200
    assert "<td>nunca</td>" not in (await admin.get("/admin/keys")).text  # last use is shown
    revoked = await post_form(admin, "/admin/keys", f"/admin/keys/{key_id}/revoke")
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/admin/keys?m=revoked"
    after = await admin.get(revoked.headers["location"])
    assert "Clave revocada" in after.text
    assert "revocada el " in after.text
    assert f"/admin/keys/{key_id}/revoke" not in after.text
    refused = await admin.get(PACKAGES, headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401
    again = await post_form(admin, "/admin/keys", f"/admin/keys/{key_id}/revoke")
    assert again.status_code == 303
    entries = audit_rows(database_url, "api_key")
    assert entries == [
        (ADMIN, "api_key_created", f"{prefix} ONG <b>Agua</b> (results:read, stats:read)"),
        (ADMIN, "api_key_revoked", f"{prefix} ONG <b>Agua</b>"),
    ]
    everything = repr(sql(database_url, "SELECT * FROM audit_log")) + repr(
        sql(database_url, "SELECT * FROM api_keys")
    )
    assert key not in everything
    assert key.split("_", 2)[2] not in everything


@pytest.mark.parametrize(
    ("name", "scopes", "message"),
    [
        ("", ("results:read",), "Escriba para quién es la clave (de 1 a 100 caracteres)."),
        ("   ", ("results:read",), "Escriba para quién es la clave"),
        ("x" * 101, ("results:read",), "de 1 a 100 caracteres"),
        ("ONG", ("admin:all",), "Permiso desconocido: admin:all. Los permisos posibles son: results:read"),
        ("ONG", ("results:read", "<script>"), "Permiso desconocido: &lt;script&gt;."),
        ("ONG", (), "Elija al menos un permiso (results:read, stats:read)."),
    ],
    ids=["empty-name", "blank-name", "long-name", "unknown-scope", "markup-scope", "no-scope"],
)
async def test_a_bad_key_request_is_refused_with_a_message(
    admin: httpx.AsyncClient, database_url: str, name: str, scopes: tuple[str, ...], message: str
) -> None:
    """422 with a clear message; no key, no audit entry."""
    token = token_in(await admin.get("/admin/keys"))
    page = await admin.post("/admin/keys", data={"csrf_token": token, "name": name, "scope": list(scopes)})
    assert page.status_code == 422
    assert message in page.text
    assert "<script>" not in page.text
    assert KEY.search(page.text) is None
    assert count_rows(database_url, "api_keys") == 0
    assert audit_rows(database_url, "api_key") == []


async def test_revoking_an_unknown_key_is_a_404_page(admin: httpx.AsyncClient) -> None:
    """A missing id gets the error page; ids that are no key at all are refused by validation."""
    missing = await post_form(admin, "/admin/keys", "/admin/keys/99999/revoke")
    assert missing.status_code == 404
    assert "Esa clave de API no existe." in missing.text
    for bad in ("0", str(2**31), "abc"):
        assert (await post_form(admin, "/admin/keys", f"/admin/keys/{bad}/revoke")).status_code == 422


# ---------------------------------------------------------------------------------------- broadcasts


async def subscribe(client: httpx.AsyncClient, signer: TwilioSigner, number: str, keyword: str) -> None:
    """A caller texts the news keyword (signed like Twilio)."""
    replies = await TextPhone(client=client, signer=signer, sender=number).text(keyword)
    assert replies


async def send_news(admin: httpx.AsyncClient, **fields: str) -> httpx.Response:
    """Submit the broadcast form as the page offers it (its CSRF token and newest broadcast)."""
    form = await admin.get("/admin/broadcasts")
    latest = re.search(r'name="latest" value="(\d+)"', form.text)
    assert latest
    data = {"csrf_token": token_in(form), "latest": latest.group(1), **fields}
    return await admin.post("/admin/broadcasts", data=data)


async def test_a_broadcast_from_the_page_reaches_the_outbox_and_its_counts_show(
    admin: httpx.AsyncClient, signer: TwilioSigner, database_url: str
) -> None:
    """Opted-in Spanish subscribers are queued; the Quechua one is reported left out; counts follow."""
    for number in (SPANISH, SPANISH_TOO):
        await subscribe(admin, signer, number, "NOTICIAS")
    await subscribe(admin, signer, QUECHUA, "WILLAKUY")
    page = await admin.get("/admin/broadcasts")
    assert page.status_code == 200
    assert 'name="text_es"' in page.text
    assert 'name="text_qu"' in page.text
    assert '<option value="yauli">Yauli</option>' in page.text
    assert 'value="prefiero_no_decir"' not in page.text
    done = await send_news(admin, text_es=f"  {NEWS}  ", text_qu="   ")
    assert done.status_code == 201
    assert "2 personas suscritas la recibirán" in done.text
    assert re.search(r"1 persona suscrita en \S+ \(qu\) no recibirá nada", done.text)
    rows = sql(database_url, "SELECT body, status, broadcast_id, purpose FROM outbox ORDER BY id")
    ((broadcast_id,),) = sql(database_url, "SELECT id FROM broadcasts")
    assert rows == [(NEWS, "pending", broadcast_id, "news")] * 2
    assert audit_rows(database_url, "broadcast") == [
        (ADMIN, "broadcast_created", f"#{broadcast_id} es, todas, 2 SMS")
    ]
    sql(database_url, "UPDATE outbox SET status = 'delivered' WHERE id = (SELECT min(id) FROM outbox)")
    sql(database_url, "UPDATE outbox SET status = 'failed' WHERE id = (SELECT max(id) FROM outbox)")
    listing = await admin.get("/admin/broadcasts")
    row = re.search(rf'<tr data-broadcast="{broadcast_id}">(.*?)</tr>', listing.text, re.S)
    assert row
    cells = re.findall(r"<td>(.*?)</td>", row.group(1))
    assert cells == [str(broadcast_id), "es", "todas", "2", "0", "0", "1", "1", "0"]
    assert_no_number(page, done, listing, await admin.get("/admin/keys"), await admin.get("/admin/audit"))


async def test_a_community_broadcast_reaches_only_that_community(
    admin: httpx.AsyncClient, signer: TwilioSigner, database_url: str
) -> None:
    """A chosen survey community limits the recipients; the listing names it by its label."""
    await subscribe(admin, signer, SPANISH, "NOTICIAS")
    await subscribe(admin, signer, SPANISH_TOO, "NOTICIAS")
    sql(
        database_url,
        "UPDATE subscriptions SET community = 'yauli' WHERE id = (SELECT min(id) FROM subscriptions)",
    )
    done = await send_news(admin, text_es=NEWS, text_qu="Willakuy", community="yauli")
    assert done.status_code == 201
    assert "1 persona suscrita la recibirá" in done.text
    assert 'id="left-out"' not in done.text
    assert count_rows(database_url, "outbox") == 1
    assert re.search(r"<td>es, qu</td>\s*<td>Yauli</td>", done.text)


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"text_es": "", "text_qu": ""}, 422, "Escriba la noticia en al menos un idioma."),
        ({"text_es": "  \n ", "text_qu": "\t"}, 422, "Escriba la noticia en al menos un idioma."),
        ({}, 422, "Escriba la noticia en al menos un idioma."),
        ({"text_es": "a" * 307}, 422, "El texto no cabe en 2 SMS (es: 307 de 306 caracteres)"),
        ({"text_es": "ok", "text_qu": "á" * 135}, 422, "(qu: 135 de 134 caracteres)"),
        ({"text_es": NEWS, "community": "narnia"}, 422, "Esa comunidad no está en la lista"),
        ({"text_es": NEWS, "latest": "0", "stale": "1"}, 409, "no se envió nada"),
    ],
    ids=["empty", "blank", "missing", "too-long", "too-long-ucs2", "unknown-community", "stale-form"],
)
async def test_a_bad_broadcast_is_refused_and_nothing_is_queued(
    admin: httpx.AsyncClient,
    signer: TwilioSigner,
    app: FastAPI,
    database_url: str,
    fields: dict[str, str],
    status: int,
    message: str,
) -> None:
    """A clear message, the typed text kept in the form, and no broadcast, SMS or audit entry."""
    await subscribe(admin, signer, SPANISH, "NOTICIAS")
    earlier = 0
    fields = dict(fields)  # the parameter is shared by the SQLite and PostgreSQL runs: never mutate it
    if fields.pop("stale", None):  # another broadcast went out after this form was opened
        token = token_in(await admin.get("/admin/broadcasts"))
        first = await admin.post(
            "/admin/broadcasts", data={"csrf_token": token, "latest": "0", "text_es": "x"}
        )
        assert first.status_code == 201
        earlier = 1
    token = token_in(await admin.get("/admin/broadcasts"))
    data = {"csrf_token": token, "latest": str(earlier), **fields}
    page = await admin.post("/admin/broadcasts", data=data)
    assert page.status_code == status
    assert message in page.text
    assert 'id="queued"' not in page.text
    if "text_es" in fields and fields["text_es"].strip():
        assert f">{fields['text_es']}</textarea>" in page.text
    assert count_rows(database_url, "broadcasts") == earlier
    assert count_rows(database_url, "outbox") == earlier
    assert len(audit_rows(database_url, "broadcast")) == earlier
    assert_no_number(page)


async def test_without_a_community_question_the_community_is_free_text(
    admin: httpx.AsyncClient, app: FastAPI, settings: Settings, database_url: str
) -> None:
    """A flow with no community profile offers a text field; an over-long name is refused."""
    flow = app.state.flows[settings.default_flow]
    question = flow.profile_questions()["community"]
    nodes = dict(flow.nodes)
    node_id = next(key for key, node in nodes.items() if getattr(node, "question", None) == question)
    nodes[node_id] = nodes[node_id].model_copy(update={"profile": None})
    app.state.flows = {**app.state.flows, settings.default_flow: flow.model_copy(update={"nodes": nodes})}
    page = await admin.get("/admin/broadcasts")
    assert '<input id="community" name="community"' in page.text
    too_long = await send_news(admin, text_es=NEWS, community="x" * 65)
    assert too_long.status_code == 422
    assert "hasta 64 caracteres" in too_long.text
    assert count_rows(database_url, "broadcasts") == 0
    done = await send_news(admin, text_es=NEWS, community="Pueblo Nuevo")
    assert done.status_code == 201
    assert sql(database_url, "SELECT community, recipients FROM broadcasts") == [("Pueblo Nuevo", 0)]


# -------------------------------------------------------------------------------------------- access


@pytest.mark.parametrize("token", [None, "0" * 64], ids=["missing", "wrong"])
async def test_forms_without_the_session_token_change_nothing(
    admin: httpx.AsyncClient, signer: TwilioSigner, database_url: str, token: str | None
) -> None:
    """Creating or revoking a key and sending news all refuse a missing or wrong CSRF token."""
    await subscribe(admin, signer, SPANISH, "NOTICIAS")
    key = await create_key(admin)
    ((key_id,),) = sql(database_url, "SELECT id FROM api_keys")
    assert key.status_code == 201
    data = {} if token is None else {"csrf_token": token}
    posts = {
        "/admin/keys": {"name": "Otra ONG", "scope": "results:read"},
        f"/admin/keys/{key_id}/revoke": {},
        "/admin/broadcasts": {"text_es": NEWS, "latest": "0"},
    }
    for path, fields in posts.items():
        refused = await admin.post(path, data={**data, **fields})
        assert refused.status_code == 403
        assert "no se cambió nada" in refused.text
    assert count_rows(database_url, "api_keys") == 1
    assert sql(database_url, "SELECT revoked_at FROM api_keys") == [(None,)]
    assert count_rows(database_url, "broadcasts") == 0
    assert count_rows(database_url, "outbox") == 0


async def test_a_manager_is_refused_and_a_stranger_sent_to_login(
    client: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    """403 page for a manager (GET and POST, even with her own valid token); no session: /login."""
    for path in ("/admin/keys", "/admin/broadcasts"):
        assert (await client.get(path)).headers["location"] == "/login"
        assert (await client.post(path, data={"name": "x"})).headers["location"] == "/login"
    quiet(app)
    await add_user(app)
    await login(client)
    token = token_in(await client.get("/account"))
    for path in ("/admin/keys", "/admin/broadcasts"):
        page = await client.get(path)
        assert page.status_code == 403
        assert "Acceso denegado" in page.text
    posts = {
        "/admin/keys": {"name": "ONG", "scope": "results:read"},
        "/admin/keys/1/revoke": {},
        "/admin/broadcasts": {"text_es": NEWS, "latest": "0"},
    }
    for path, fields in posts.items():
        refused = await client.post(path, data={"csrf_token": token, **fields})
        assert refused.status_code == 403
        assert "Acceso denegado" in refused.text
    assert count_rows(database_url, "api_keys") == 0
    assert count_rows(database_url, "broadcasts") == 0


async def test_the_admin_pages_carry_the_security_headers(admin: httpx.AsyncClient) -> None:
    """CSP, no framing, no referrer and no caching: the key page must not be kept by a browser."""
    for page in (
        await admin.get("/admin/keys"),
        await admin.get("/admin/broadcasts"),
        await create_key(admin),
    ):
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
