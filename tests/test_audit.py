"""The audit log: append-only entries, the actor kept by name, the admin page newest first and paged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

import app.audit.repository as repository_module
import app.audit.service as service_module
from app.audit.service import AuditAction, AuditService
from app.staff.models import Role
from app.staff.totp import new_seed
from tests.outbound import Clock, Sessions, sessions_for
from tests.test_web_auth import ADMIN, MANAGER, PASSWORD, Sleeps, add_user, login, post_form, quiet, sql


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[Sessions]:
    """Sessions on the test database."""
    async with sessions_for(database_url) as made:
        yield made


@pytest.fixture
def sleeps(app: FastAPI) -> Sleeps:
    """No login delays; cheap password hashing."""
    return quiet(app)


async def test_record_keeps_actor_action_case_and_detail(maker: Sessions) -> None:
    """A word or a user as actor; the detail is cut to fit; pages come newest first."""
    clock = Clock()
    async with maker() as db:
        log = AuditService(db, clock=clock)
        await log.record("system", "purge", detail="x" * 300)
        clock.advance(seconds=1)
        await log.record("caller", "case_opened", case_id=42)
        with pytest.raises(ValueError, match="1 to 32 characters"):
            await log.record("system", "")
        with pytest.raises(ValueError, match="1 to 32 characters"):
            await log.record("system", "a" * 33)
        page = await log.page(1, size=1)
        assert [e.action for e in page.entries] == ["case_opened"]
        assert page.entries[0].case_id == 42
        assert (page.page, page.pages, page.total) == (1, 2, 2)
        older = await log.page(2, size=1)
        assert older.entries[0].detail == "x" * 255
        assert older.entries[0].user_id is None
        assert (await log.page(3, size=1)).entries == []
        assert (await log.page(0, size=1)).page == 1


def test_no_code_path_updates_or_deletes_entries() -> None:
    """Append-only by construction: the audit modules never update or delete."""
    for module in (repository_module, service_module):
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        for word in ("update(", "delete(", ".delete", "execute("):
            assert word not in source, (module.__name__, word)


async def admin_client(web: httpx.AsyncClient, app: FastAPI) -> None:
    """Sign ``web`` in as an enrolled admin, skipping the code step."""
    await add_user(app, ADMIN, Role.ADMIN, seed=new_seed())
    await login(web, ADMIN)
    sql(app.state.settings.sqlalchemy_url, "UPDATE staff_sessions SET second_factor_done = true")


async def test_the_admin_page_lists_the_log_newest_first_in_pages(
    client: httpx.AsyncClient, app: FastAPI, sleeps: Sleeps
) -> None:
    """Entries appear newest first, 50 a page, with links between pages; markup is escaped."""
    await admin_client(client, app)
    clock = Clock()
    async with app.state.sessionmaker() as db:
        log = AuditService(db, clock=clock)
        for number in range(55):
            clock.advance(seconds=1)
            await log.record("system", "probe", case_id=number, detail="<b>x</b>")
        await db.commit()
    first = await client.get("/admin/audit")
    assert first.status_code == 200
    assert "55 entradas · página 1 de 2" in first.text
    assert first.text.index("<td>54</td>") < first.text.index("<td>53</td>")
    assert "&lt;b&gt;x&lt;/b&gt;" in first.text
    assert "<b>x</b>" not in first.text
    assert 'href="/admin/audit?page=2"' in first.text
    second = await client.get("/admin/audit?page=2")
    assert "<td>0</td>" in second.text
    assert "<td>54</td>" not in second.text
    assert (await client.get("/admin/audit?page=0")).status_code == 422


async def test_admin_creates_and_deactivates_accounts_and_it_is_audited(
    client: httpx.AsyncClient, app: FastAPI, sleeps: Sleeps, database_url: str
) -> None:
    """Create, refuse a duplicate and a short password, deactivate (ending sessions), not oneself."""
    await admin_client(client, app)
    fields = {"email": MANAGER, "role": "manager", "password": PASSWORD}
    created = await post_form(client, "/admin/users", "/admin/users", **fields)
    assert created.headers["location"] == "/admin/users?m=created"
    duplicate = await post_form(client, "/admin/users", "/admin/users", **fields)
    assert duplicate.status_code == 400
    assert "Ya existe una cuenta" in duplicate.text
    short = await post_form(
        client, "/admin/users", "/admin/users", **{**fields, "email": "b@example.org", "password": "short"}
    )
    assert short.status_code == 400
    assert "al menos 12 caracteres" in short.text
    bad_role = await post_form(
        client, "/admin/users", "/admin/users", **{**fields, "email": "c@example.org", "role": "root"}
    )
    assert bad_role.status_code == 400
    (manager_id,) = sql(database_url, f"SELECT id FROM staff_users WHERE email = '{MANAGER}'")[0]  # noqa: S608
    (admin_id,) = sql(database_url, f"SELECT id FROM staff_users WHERE email = '{ADMIN}'")[0]  # noqa: S608
    self_off = await post_form(client, "/admin/users", f"/admin/users/{admin_id}/deactivate")
    assert self_off.status_code == 400
    assert "propia cuenta" in self_off.text
    missing = await post_form(client, "/admin/users", "/admin/users/99999/deactivate")
    assert missing.status_code == 404
    done = await post_form(client, "/admin/users", f"/admin/users/{manager_id}/deactivate")
    assert done.headers["location"] == "/admin/users?m=deactivated"
    assert sql(database_url, "SELECT active FROM staff_users ORDER BY id") in (
        [(1,), (0,)],
        [(True,), (False,)],
    )
    entries = sql(
        database_url, "SELECT actor, action, detail FROM audit_log WHERE action LIKE 'user_%' ORDER BY id"
    )
    assert entries == [
        (ADMIN, AuditAction.USER_CREATED, f"{MANAGER} (manager)"),
        (ADMIN, AuditAction.USER_DEACTIVATED, MANAGER),
    ]
    assert PASSWORD not in repr(sql(database_url, "SELECT * FROM audit_log"))
