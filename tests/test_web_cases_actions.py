"""The case page's actions over HTTP: assign, notes, text and voice answers, close, and every refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from app.cases.errors import InvalidAnswer
from app.cases.models import CaseAnswer, CaseNote, ReplyBy
from app.cases.service import CaseService
from app.contacts.models import ContactPurpose
from app.db.base import utcnow
from app.db.engine import make_sync_engine
from app.staff.models import StaffUser
from tests.samples import wav
from tests.test_web_auth import token_in
from tests.web_cases_support import act, actions, count, second, seed, settings, upload, version_of, web

__all__ = ["second", "settings", "web"]  # fixtures shared from web_cases_support


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
