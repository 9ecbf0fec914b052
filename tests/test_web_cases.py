"""The case pages over HTTP: queue, case page, recordings, every action and every refusal."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.audit.service import AuditService
from app.callers.models import Caller
from app.cases.errors import InvalidAnswer
from app.cases.models import Case, CaseAnswer, CaseMessage, CaseNote, ReplyBy
from app.cases.service import CaseService
from app.contacts.models import ContactPurpose
from app.db.base import utcnow
from app.db.engine import make_sync_engine
from app.outbox.models import OutboxMessage
from app.recordings.models import Recording
from app.recordings.service import recording_path
from app.sessions.models import CallSession
from app.settings import Settings
from app.staff.models import Role, StaffUser
from app.staff.totp import new_seed
from app.web import cases as case_pages
from tests.outbound import NEEDLES, NUMBER, outbound_settings
from tests.samples import wav
from tests.test_web_auth import ADMIN, MANAGER, add_user, login, post_form, quiet, token_in

OTHER = "otra@example.org"
AUDIO_DIGITS = NUMBER[-9:]


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """A data dir of the test's own (recordings, answers), and an account that can send SMS."""
    return outbound_settings(settings, data_dir=tmp_path / "data")


@pytest.fixture
async def web(client: httpx.AsyncClient, app: FastAPI) -> httpx.AsyncClient:
    """A manager signed in on a browser-like client."""
    quiet(app)
    await add_user(app)
    assert (await login(client)).headers["location"] == "/cases"
    return client


@pytest.fixture
async def second(app: FastAPI, web: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """Another manager, signed in on a browser of her own."""
    await add_user(app, OTHER)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=str(web.base_url)) as other:
        await login(other, OTHER)
        yield other


@dataclass(frozen=True)
class Seeded:
    """A case put straight into the database, and its recording's public id if it has one."""

    case_id: int
    code: str
    public_id: str | None


async def seed_case(
    db: AsyncSession,
    settings: Settings,
    *,
    pseudonym: str | None = None,
    language: str = "es",
    topic: str = "water",
    channel: str = "sms",
    status: str = "new",
    text: str | None = "¿El agua del río está contaminada?",
    recording: str | None = None,
    audio: bytes = b"",
    created_at: datetime | None = None,
) -> Seeded:
    """A caller, her call and her case (with a recording in state ``recording``), as the line leaves them."""
    caller = Caller(pseudonym=pseudonym or secrets.token_hex(32), language=language)
    db.add(caller)
    await db.flush()
    call = CallSession(
        id=secrets.token_hex(16),
        caller_id=caller.id,
        channel=channel,
        provider_id="CA" + secrets.token_hex(16),
        flow_id="hotline",
        language=language,
        state={},
        gender="mujer",
        age_band="30_44",
        community="huancayo",
    )
    db.add(call)
    await db.flush()
    recording_id, public_id = None, None
    if recording is not None:
        public_id = secrets.token_hex(16)
        sid = "RE" + secrets.token_hex(16)
        row = Recording(public_id=public_id, session_id=call.id, provider_sid=sid, status=recording)
        row.source_url, row.media_type = f"https://api.twilio.com/{sid}", "audio/mpeg"
        db.add(row)
        await db.flush()
        recording_id = row.id
        if audio:
            path = recording_path(settings, public_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(audio)
    when = created_at or utcnow()
    case = Case(
        code=str(secrets.randbelow(900_000) + 100_000),
        caller_id=caller.id,
        session_id=call.id,
        channel=channel,
        language=language,
        topic=topic,
        status=status,
        gender="mujer",
        age_band="30_44",
        community="huancayo",
        created_at=when,
        updated_at=when,
    )
    db.add(case)
    await db.flush()
    db.add(
        CaseMessage(case_id=case.id, channel=channel, text=text, recording_id=recording_id, created_at=when)
    )
    await AuditService(db).record("caller", "case_opened", case_id=case.id, detail=channel)
    await db.commit()
    return Seeded(case.id, case.code, public_id)


async def seed(app: FastAPI, **values: object) -> Seeded:
    """A case in the app's database."""
    async with app.state.sessionmaker() as db:
        return await seed_case(db, app.state.settings, **values)  # type: ignore[arg-type]


async def count(app: FastAPI, model: type[object], case_id: int) -> int:
    """How many rows of answers or notes a case has."""
    async with app.state.sessionmaker() as db:
        column = model.case_id  # type: ignore[attr-defined]
        return int(await db.scalar(select(func.count()).select_from(model).where(column == case_id)) or 0)


async def actions(app: FastAPI, case_id: int) -> list[str]:
    """The case's audit log, oldest first."""
    async with app.state.sessionmaker() as db:
        query = select(AuditEntry.action).where(AuditEntry.case_id == case_id).order_by(AuditEntry.id)
        return list(await db.scalars(query))


def version_of(page: httpx.Response) -> str:
    """The case version the page's forms carry."""
    match = re.search(r'name="version" value="(\d+)"', page.text)
    assert match, page.text
    return match.group(1)


async def act(web: httpx.AsyncClient, case_id: int, action: str, **fields: str) -> httpx.Response:
    """Open the case page and submit one of its forms, as a browser would."""
    page = await web.get(f"/cases/{case_id}")
    data = {"csrf_token": token_in(page), "version": version_of(page), **fields}
    return await web.post(f"/cases/{case_id}/{action}", data=data)


async def upload(web: httpx.AsyncClient, case_id: int, audio: bytes, **fields: str) -> httpx.Response:
    """Submit the voice answer form with a file."""
    page = await web.get(f"/cases/{case_id}")
    data = {"csrf_token": token_in(page), "version": version_of(page), **fields}
    files = {"audio": ("respuesta.wav", audio, "audio/wav")}
    return await web.post(f"/cases/{case_id}/answer/voice", data=data, files=files)


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


# ---------------------------------------------------------------------- actions


async def test_assign_note_answer_and_close(web: httpx.AsyncClient, app: FastAPI) -> None:
    """Each action redirects back with a notice, and the timeline says who did what."""
    case = await seed(app)
    for action, fields, notice in (
        ("assign", {}, "El caso ahora es suyo."),
        ("notes", {"text": "Consultar con <OEFA>"}, "Nota guardada."),
        ("answer/text", {"text": "El agua se analiza cada mes."}, "Respuesta guardada."),
        ("close", {}, "Caso cerrado."),
    ):
        done = await act(web, case.case_id, action, **fields)
        assert done.status_code == 303, done.text
        assert done.headers["location"].startswith(f"/cases/{case.case_id}?m=")
        assert notice in (await web.get(done.headers["location"])).text
    page = await web.get(f"/cases/{case.case_id}")
    assert "Consultar con &lt;OEFA&gt;" in page.text
    assert "El agua se analiza cada mes." in page.text
    assert 'id="close-form"' not in page.text
    logged = await actions(app, case.case_id)
    for action in ("case_assigned", "note_added", "answered_text", "case_closed"):
        assert action in logged


@pytest.mark.parametrize("action", ["assign", "notes", "answer/text", "answer/voice", "close"])
@pytest.mark.parametrize("token", [None, "forged"])
async def test_every_action_needs_the_csrf_token(
    web: httpx.AsyncClient, app: FastAPI, action: str, token: str | None
) -> None:
    """Missing or wrong token: 403, nothing changed, nothing logged but the view."""
    case = await seed(app)
    page = await web.get(f"/cases/{case.case_id}")
    data = {"version": version_of(page), "text": "hola"}
    if token is not None:
        data["csrf_token"] = token
    files = {"audio": ("a.wav", wav(), "audio/wav")} if action == "answer/voice" else None
    refused = await web.post(f"/cases/{case.case_id}/{action}", data=data, files=files)
    assert refused.status_code == 403
    assert "Formulario rechazado" in refused.text
    assert await actions(app, case.case_id) == ["case_opened", "case_viewed"]


@pytest.mark.parametrize("column", ["last_seen_at", "expires_at"])
async def test_an_action_in_an_expired_session_goes_to_login_and_changes_nothing(
    web: httpx.AsyncClient, app: FastAPI, database_url: str, column: str
) -> None:
    """The page was open while the session ran out (idle or lifetime): the answer is not taken."""
    case = await seed(app)
    page = await web.get(f"/cases/{case.case_id}")
    data = {"version": version_of(page), "text": "Respuesta tardía", "csrf_token": token_in(page)}
    moment = (utcnow() - timedelta(days=2)).isoformat(sep=" ")
    engine = make_sync_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"UPDATE staff_sessions SET {column} = :moment"), {"moment": moment})  # noqa: S608
    finally:
        engine.dispose()
    refused = await web.post(f"/cases/{case.case_id}/answer/text", data=data)
    assert refused.status_code == 303
    assert refused.headers["location"] == "/login?m=expired"
    assert await actions(app, case.case_id) == ["case_opened", "case_viewed"]
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(CaseAnswer)) == 0


async def test_two_managers_at_once_the_second_is_told_the_case_changed(
    web: httpx.AsyncClient, second: httpx.AsyncClient, app: FastAPI
) -> None:
    """Both opened the same version; the second answer is refused (409) and not stored."""
    case = await seed(app)
    mine, hers = await web.get(f"/cases/{case.case_id}"), await second.get(f"/cases/{case.case_id}")
    first = {"csrf_token": token_in(mine), "version": version_of(mine), "text": "primera"}
    assert (await web.post(f"/cases/{case.case_id}/answer/text", data=first)).status_code == 303
    late = {"csrf_token": token_in(hers), "version": version_of(hers), "text": "segunda"}
    refused = await second.post(f"/cases/{case.case_id}/answer/text", data=late)
    assert refused.status_code == 409
    assert "El caso cambió desde que lo abrió" in refused.text
    assert "primera" in refused.text  # the page shows the case as it is now
    assert await count(app, CaseAnswer, case.case_id) == 1
    stale_close = await second.post(f"/cases/{case.case_id}/close", data=late)
    assert stale_close.status_code == 409


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"text": "   "}, "está vacía"),
        ({"text": "x" * 1001}, "más de 1000 caracteres"),
        ({"text": "ok", "version": "abc"}, "falta la versión"),
    ],
)
async def test_bad_text_answers_are_refused_and_nothing_is_stored(
    web: httpx.AsyncClient, app: FastAPI, fields: dict[str, str], message: str
) -> None:
    """Empty, too long, or a form without a version: a clear message and no answer."""
    case = await seed(app)
    refused = await act(web, case.case_id, "answer/text", **fields)
    assert refused.status_code in {400, 422}
    assert message in refused.text
    assert await count(app, CaseAnswer, case.case_id) == 0
    assert (await act(web, case.case_id, "notes", text="")).status_code == 422
    assert await count(app, CaseNote, case.case_id) == 0


async def test_a_closed_case_cannot_be_answered(web: httpx.AsyncClient, app: FastAPI) -> None:
    """422 with a message; the forms are gone from its page."""
    case = await seed(app, status="closed")
    page = await web.get(f"/cases/{case.case_id}")
    assert 'id="text-answer"' not in page.text
    data = {"csrf_token": token_in(page), "version": version_of(page), "text": "tarde"}
    refused = await web.post(f"/cases/{case.case_id}/answer/text", data=data)
    assert refused.status_code == 422
    assert "El caso está cerrado" in refused.text
    assert await count(app, CaseAnswer, case.case_id) == 0


async def test_a_text_answer_a_quechua_caller_cannot_hear_is_refused(
    web: httpx.AsyncClient, app: FastAPI
) -> None:
    """She calls back and no voice reads Quechua: record a voice answer. By SMS, text is fine."""
    case = await seed(app, language="qu", channel="voice")
    page = await web.get(f"/cases/{case.case_id}")
    assert 'id="text-unheard"' in page.text
    assert 'id="text-answer"' not in page.text
    refused = await act(web, case.case_id, "answer/text", text="Yaku")
    assert refused.status_code == 422
    assert "grabe una respuesta de voz" in refused.text
    assert await count(app, CaseAnswer, case.case_id) == 0


async def test_the_service_refuses_text_for_a_call_back_in_a_language_without_a_voice(app: FastAPI) -> None:
    """answer_text itself: Quechua and call back (or a lost number) is refused; by SMS, accepted."""
    case = await seed(app, language="qu")
    async with app.state.sessionmaker() as db:
        flow = app.state.flows[app.state.settings.default_flow]
        service = CaseService(db, app.state.settings, app.state.contact_cipher, flow)
        staff = StaffUser(email="x@example.org", password_hash="x", role="manager")
        db.add(staff)
        loaded = await service.get(case.case_id)
        with pytest.raises(InvalidAnswer, match="record a voice answer"):
            await service.answer_text(loaded, staff, "Yaku", loaded.version)
        loaded.reply_by = ReplyBy.SMS
        with pytest.raises(InvalidAnswer, match="record a voice answer"):
            # She chose SMS, but her number is gone (STOP, or the case was closed): text cannot reach her.
            await service.answer_text(loaded, staff, "Yaku", loaded.version)
        assert loaded.caller_id is not None
        await service.contacts.remember(loaded.caller_id, "+51964999111", ContactPurpose.SMS_REPLIES)
        answer = await service.answer_text(loaded, staff, "Yaku", loaded.version)
        assert answer.text == "Yaku"


# ---------------------------------------------------------------------- voice answers


@pytest.mark.audio
async def test_a_voice_answer_is_stored_and_served_to_staff_only(
    web: httpx.AsyncClient, app: FastAPI
) -> None:
    """A WAV becomes an MP3 answer; its player is on the page; another case cannot fetch it."""
    case = await seed(app, language="qu", channel="voice")
    other = await seed(app)
    page = await web.get(f"/cases/{case.case_id}")
    assert 'accept="audio/*"' in page.text
    done = await upload(web, case.case_id, wav())
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/cases/{case.case_id}?m=answered"
    async with app.state.sessionmaker() as db:
        answer = await db.scalar(select(CaseAnswer).where(CaseAnswer.case_id == case.case_id))
    assert answer is not None
    page = await web.get(f"/cases/{case.case_id}")
    assert f"/cases/{case.case_id}/answers/{answer.id}/audio" in page.text
    served = await web.get(f"/cases/{case.case_id}/answers/{answer.id}/audio")
    assert served.status_code == 200
    assert served.headers["content-type"] == "audio/mpeg"
    assert served.headers["cache-control"] == "no-store"
    assert served.content[:3] in {b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"}
    assert (await web.get(f"/cases/{other.case_id}/answers/{answer.id}/audio")).status_code == 404
    assert "answered_voice" in await actions(app, case.case_id)


@pytest.mark.audio
@pytest.mark.parametrize(
    ("audio", "message"),
    [(b"", "vacía"), (b"<html>not audio</html>" * 100, "no es un audio"), (b"\0" * 5000, "no es un audio")],
)
async def test_a_voice_answer_that_is_not_audio_is_refused(
    web: httpx.AsyncClient, app: FastAPI, audio: bytes, message: str
) -> None:
    """422, a clear reason, no answer and no file."""
    case = await seed(app)
    refused = await upload(web, case.case_id, audio)
    assert refused.status_code == 422
    assert message in refused.text
    assert await count(app, CaseAnswer, case.case_id) == 0
    answers = app.state.settings.data_dir / "answers"
    assert not answers.exists() or not any(answers.iterdir())


async def test_a_voice_answer_too_large_is_refused_without_reading_it_all(
    web: httpx.AsyncClient, app: FastAPI
) -> None:
    """Over the limit: a file in a small body, a declared length, or a chunked body that never ends."""
    app.state.settings = app.state.settings.model_copy(update={"answer_upload_max_bytes": 100_000})
    case = await seed(app)
    refused = await upload(web, case.case_id, b"RIFF" + b"\0" * 120_000)
    assert refused.status_code == 422
    assert "pasa el máximo" in refused.text
    page = await web.get(f"/cases/{case.case_id}")
    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        yield b'--x\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
        for _ in range(10_000):  # 640 MB if it were all read
            sent.append(1)
            yield b"-" * 65536

    headers = {"content-type": "multipart/form-data; boundary=x"}
    chunked = await web.post(f"/cases/{case.case_id}/answer/voice", content=endless(), headers=headers)
    assert chunked.status_code == 422
    assert len(sent) < 10
    declared = await web.post(
        f"/cases/{case.case_id}/answer/voice",
        content=b"--x--",
        headers={**headers, "content-length": str(10**9)},
    )
    assert declared.status_code == 422
    assert token_in(page)
    assert await count(app, CaseAnswer, case.case_id) == 0


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
