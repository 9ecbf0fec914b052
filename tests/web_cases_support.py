"""What the case pages' tests share: signed-in managers, cases seeded in the database, form helpers."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.audit.service import AuditService
from app.callers.models import Caller
from app.cases.models import Case, CaseMessage
from app.db.base import utcnow
from app.recordings.models import Recording
from app.recordings.service import recording_path
from app.sessions.models import CallSession
from app.settings import Settings
from tests.outbound import outbound_settings
from tests.test_web_auth import add_user, login, quiet, token_in

OTHER = "otra@example.org"


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
