"""The case pages over HTTP: access, the queue, the case page, its recordings, and privacy."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.cases.service import CaseService
from app.db.base import utcnow
from app.outbox.models import OutboxMessage
from app.staff.models import Role
from app.staff.totp import new_seed
from app.web import cases as case_pages
from tests.outbound import NEEDLES, NUMBER
from tests.test_web_auth import ADMIN, MANAGER, add_user, login, post_form, quiet
from tests.web_cases_support import act, actions, seed, settings, web

AUDIO_DIGITS = NUMBER[-9:]
__all__ = ["settings", "web"]  # fixtures, used by name


# ---------------------------------------------------------------------- access


async def test_signed_out_visitors_are_sent_to_login(client: httpx.AsyncClient, app: FastAPI) -> None:
    """Queue, case, recording and actions all need a signed-in staff member."""
    case = await seed(app, recording="stored", audio=b"ID3" + b"\0" * 100)
    for path in ("/cases", f"/cases/{case.case_id}", f"/cases/{case.case_id}/recordings/{case.public_id}"):
        response = await client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/login")
    refused = await client.post(f"/cases/{case.case_id}/assign", data={"version": "1"})
    assert (refused.status_code, refused.headers["location"]) == (303, "/login")


async def test_login_lands_on_the_queue_and_admins_work_cases_too(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """An admin (with TOTP) gets the queue like a manager; the nav links to it."""
    quiet(app)
    seed_value = new_seed()
    await add_user(app, ADMIN, Role.ADMIN, seed=seed_value)
    await login(client, ADMIN)
    done = await post_form(client, "/login/totp", "/login/totp", code=pyotp.TOTP(seed_value).now())
    assert done.headers["location"] == "/cases"
    queue = await client.get("/cases")
    assert queue.status_code == 200
    assert '<a href="/cases">Casos</a>' in queue.text


# ---------------------------------------------------------------------- the queue


async def test_the_queue_is_oldest_first_filtered_and_counted(
    web: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Default: everything not closed; each filter narrows; counts per status; pages of PAGE_SIZE."""
    now = utcnow()
    old = await seed(app, created_at=now - timedelta(days=8), language="qu", channel="voice", topic="land")
    mid = await seed(app, created_at=now - timedelta(days=2), status="answered")
    new = await seed(app, created_at=now - timedelta(hours=1), topic="health")
    closed = await seed(app, created_at=now - timedelta(days=4), status="closed")

    async def codes(query: str = "") -> list[str]:
        page = await web.get(f"/cases{query}")
        assert page.status_code == 200, page.text
        return re.findall(r'<a href="/cases/\d+">(\d{6})</a>', page.text)

    assert await codes() == [old.code, mid.code, new.code]
    assert await codes("?status=&language=&topic=&channel=&age=") == [old.code, mid.code, new.code]
    assert await codes("?status=closed") == [closed.code]
    assert await codes("?status=all") == [old.code, closed.code, mid.code, new.code]
    assert await codes("?status=answered") == [mid.code]
    assert await codes("?language=qu") == [old.code]
    assert await codes("?channel=sms&topic=health") == [new.code]
    assert await codes("?age=1") == [old.code, mid.code]
    assert await codes("?age=7&status=all") == [old.code]
    counts = await web.get("/cases?language=es")
    for status, number in (("new", 1), ("answered", 1), ("closed", 1), ("in_progress", 0)):
        assert re.search(rf'id="count-{status}"[^>]*>[^<]*<span class="count">{number}</span>', counts.text)
    monkeypatch.setattr(case_pages, "PAGE_SIZE", 2)
    first = await web.get("/cases?topic=")
    assert "página 1 de 2" in first.text
    assert 'href="/cases?page=2"' in first.text
    assert await codes("?page=2") == [new.code]


async def test_the_queue_shows_the_assignee_and_a_pending_recording(
    web: httpx.AsyncClient, app: FastAPI
) -> None:
    """The manager's e-mail once assigned; "grabación pendiente" until the worker stores the file."""
    case = await seed(app, channel="voice", text=None, recording="pending")
    assert (await act(web, case.case_id, "assign")).status_code == 303
    row = re.search(rf'<tr data-case="{case.case_id}">.*?</tr>', (await web.get("/cases")).text, re.S)
    assert row
    assert MANAGER in row.group(0)
    assert "grabación pendiente" in row.group(0)
    assert "En curso" in row.group(0)


@pytest.mark.parametrize(
    "query", ["?status=deleted", "?age=5", "?age=-1", "?page=0", "?language=" + "x" * 40]
)
async def test_a_bad_queue_filter_is_refused(web: httpx.AsyncClient, query: str) -> None:
    """Unknown statuses or ages, and out-of-range values, are refused rather than ignored."""
    response = await web.get(f"/cases{query}")
    assert response.status_code in {400, 422}


# ---------------------------------------------------------------------- the case page


async def test_the_case_page_shows_the_case_escaped_and_audits_the_view(
    web: httpx.AsyncClient, app: FastAPI
) -> None:
    """Text (escaped), facts, demographics and timeline; no script from the caller; the view is logged."""
    case = await seed(app, text='<script>alert("x")</script><b>agua</b>', language="es", topic="water")
    page = await web.get(f"/cases/{case.case_id}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;agua&lt;/b&gt;" in page.text
    assert "<script>alert" not in page.text
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/web/recorder.js" defer>']
    for fact in ("water", "mujer", "30_44", "huancayo", case.code, "Caso abierto", "la persona"):
        assert fact in page.text
    assert page.headers["cache-control"] == "no-store"
    assert await actions(app, case.case_id) == ["case_opened", "case_viewed"]
    assert "Visto" in (await web.get(f"/cases/{case.case_id}")).text
    missing = await web.get("/cases/999999")
    assert missing.status_code == 404
    assert "Caso no encontrado" in missing.text


async def test_recordings_are_served_to_staff_only_without_caching(
    web: httpx.AsyncClient, app: FastAPI
) -> None:
    """The stored file with its media type and no-store; another case's, pending, failed or bogus: 404."""
    audio = b"ID3" + secrets.token_bytes(2000)
    stored = await seed(app, recording="stored", audio=audio, text=None)
    pending = await seed(app, recording="pending", text=None)
    failed = await seed(app, recording="failed", text=None)
    page = await web.get(f"/cases/{stored.case_id}")
    assert (
        f'<audio controls preload="metadata" class="recording" src="/cases/{stored.case_id}/recordings/'
        in page.text
    )
    served = await web.get(f"/cases/{stored.case_id}/recordings/{stored.public_id}")
    assert served.status_code == 200
    assert served.content == audio
    assert served.headers["content-type"] == "audio/mpeg"
    assert served.headers["cache-control"] == "no-store"
    for case_id, public_id in (
        (pending.case_id, stored.public_id),  # another case's recording
        (pending.case_id, pending.public_id),  # not downloaded yet
        (failed.case_id, failed.public_id),
        (stored.case_id, "..%2F..%2Fsecrets"),
        (stored.case_id, str(stored.public_id).upper()),
        (stored.case_id, "0" * 32),
    ):
        assert (await web.get(f"/cases/{case_id}/recordings/{public_id}")).status_code == 404
    assert "Grabación pendiente" in (await web.get(f"/cases/{pending.case_id}")).text
    assert "no se pudo descargar" in (await web.get(f"/cases/{failed.case_id}")).text


# ---------------------------------------------------------------------- privacy


async def test_no_phone_number_on_any_page(web: httpx.AsyncClient, app: FastAPI) -> None:
    """Her number is known to the service only as a pseudonym and an encrypted contact: never shown."""
    pseudonym = app.state.pseudonyms.pseudonym(NUMBER)
    case = await seed(app, pseudonym=pseudonym, text="Me llamo Rosa, ¿cuándo vienen?")
    async with app.state.sessionmaker() as db:
        flow = app.state.flows[app.state.settings.default_flow]
        service = CaseService(db, app.state.settings, app.state.contact_cipher, flow)
        assert await service.reply_by_sms(await service.get(case.case_id), NUMBER)
        await db.commit()
    done = await act(web, case.case_id, "answer/text", text="Vamos el lunes.")
    assert done.headers["location"].endswith("?m=answered_sms")
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    pages = [await web.get(path) for path in ("/cases", "/cases?status=all", f"/cases/{case.case_id}")]
    pages.append(await web.get(done.headers["location"]))
    for page in pages:
        assert page.status_code == 200
        for needle in (*NEEDLES, AUDIO_DIGITS, pseudonym):
            assert needle not in page.text
