"""Retention: `rimay purge` and the worker's daily purge delete closed cases past their time."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.audit.models import AuditEntry
from app.callers.models import Caller
from app.cases.line import CODE_BUCKET
from app.cases.models import Case, CaseMessage
from app.cases.purge import Purger, purge_now
from app.cli import app
from app.contacts.crypto import ContactCipher
from app.contacts.models import Contact, ContactPurpose
from app.contacts.service import ContactService
from app.db.base import utcnow
from app.flows.model import FlowDefinition
from app.recordings.models import Recording
from app.recordings.service import recording_path
from app.settings import Settings, get_settings
from app.throttle.models import ThrottleEvent
from app.throttle.service import ThrottleKeys, ThrottleService
from tests.outbound import Clock, Sessions, sessions_for
from tests.test_outbox_cli import configure_cli

runner = CliRunner()


@pytest.fixture
def environment(
    outbound: Settings, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """`rimay` pointed at the test database."""
    configure_cli(outbound, database_url, tmp_path, monkeypatch)
    yield
    get_settings.cache_clear()


async def _cases(sessions: Sessions, *closed_days_ago: int | None) -> list[int]:
    """Cases closed that many days ago (None: still open), each with a question."""
    ids = []
    async with sessions() as db:
        for days in closed_days_ago:
            now = utcnow()
            case = Case(
                code=str(100000 + secrets.randbelow(900000)),
                channel="sms",
                language="es",
                topic="otro",
                status="closed" if days is not None else "new",
                closed_at=now - timedelta(days=days) if days is not None else None,
                created_at=now - timedelta(days=400),
                updated_at=now,
            )
            db.add(case)
            await db.flush()
            db.add(CaseMessage(case_id=case.id, channel="sms", text="¿Y el agua?", created_at=now))
            ids.append(case.id)
        await db.commit()
    return ids


async def _left(sessions: Sessions) -> tuple[list[int], int]:
    async with sessions() as db:
        cases = list((await db.scalars(select(Case.id).order_by(Case.id))).all())
        messages = int(await db.scalar(select(func.count()).select_from(CaseMessage)) or 0)
        return cases, messages


@pytest.mark.usefixtures("environment")
def test_rimay_purge_deletes_only_closed_cases_past_retention(outbound: Settings) -> None:
    """Closed 400 days ago goes; closed yesterday and still open stay."""

    async def seed() -> list[int]:
        async with sessions_for(outbound.sqlalchemy_url) as sessions:
            return await _cases(sessions, 400, 1, None)

    async def left() -> tuple[list[int], int]:
        async with sessions_for(outbound.sqlalchemy_url) as sessions:
            return await _left(sessions)

    _old, recent, still_open = asyncio.run(seed())
    result = runner.invoke(app, ["purge"])
    assert result.exit_code == 0, result.output
    assert "1 closed case(s) purged" in result.output
    assert asyncio.run(left()) == ([recent, still_open], 2)
    again = runner.invoke(app, ["purge"])
    assert "0 closed case(s) purged" in again.output


async def test_the_worker_purges_at_start_and_then_once_a_day(
    outbound: Settings, sessions: Sessions, flows: dict[str, FlowDefinition], clock: Clock
) -> None:
    """The purger beside the outbox runs when due, not on every poll."""
    retention = outbound.case_retention_days
    await _cases(sessions, retention + 1)
    purger = Purger(sessions, outbound, flows["hotline"], clock=clock)
    assert await purger.run_once() == 1
    await _cases(sessions, retention + 2)
    clock.advance(hours=23)
    assert await purger.run_once() == 0, "not a day yet"
    async with sessions() as db:
        keys = ThrottleKeys(outbound.master_secret)
        await ThrottleService(db, keys, clock=clock).record(CODE_BUCKET, "caller:1")
        await db.commit()
    clock.advance(hours=2)
    assert await purger.run_once() == 1
    assert await _left(sessions) == ([], 0)
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(ThrottleEvent)) == 0, "old wrong codes go"


async def test_purging_a_case_removes_its_recordings(
    outbound: Settings, sessions: Sessions, flows: dict[str, FlowDefinition], tmp_path: Path
) -> None:
    """The caller's audio goes; a row whose Twilio copy is not known deleted stays listed for operators."""
    settings = outbound.model_copy(update={"data_dir": tmp_path / "data"})
    [case_id] = await _cases(sessions, settings.case_retention_days + 1)
    async with sessions() as db:
        now = utcnow()
        done = Recording(
            public_id="a" * 32, provider_sid="RE" + "a" * 32, source_url="x", remote_deleted_at=now
        )
        stuck = Recording(public_id="b" * 32, provider_sid="RE" + "b" * 32, source_url="x", status="failed")
        db.add_all([done, stuck])
        await db.flush()
        for recording in (done, stuck):
            path = recording_path(settings, recording.public_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"ID3 audio")
            db.add(CaseMessage(case_id=case_id, channel="voice", recording_id=recording.id, created_at=now))
        await db.commit()
    assert await purge_now(sessions, settings, flows["hotline"], utcnow()) == 1
    assert not list((settings.data_dir / "recordings").iterdir())
    async with sessions() as db:
        assert (await db.scalars(select(Recording.public_id))).all() == ["b" * 32]


async def test_answered_cases_left_idle_are_closed_and_their_number_forgotten(
    outbound: Settings, sessions: Sessions, flows: dict[str, FlowDefinition]
) -> None:
    """An answer nobody followed up for the idle time closes the case; a new or recent one stays open."""
    now = utcnow()
    idle = outbound.case_close_idle_days
    async with sessions() as db:
        caller = Caller(pseudonym="c" * 64, language="es")
        db.add(caller)
        await db.flush()
        cipher = ContactCipher.from_secret(outbound.contact_secret)
        await ContactService(db, cipher).remember(caller.id, "+51964777999", ContactPurpose.SMS_REPLIES)
        rows = {
            "stale": ("answered", now - timedelta(days=idle + 1)),
            "recent": ("answered", now - timedelta(days=1)),
            "waiting": ("new", now - timedelta(days=idle + 30)),
        }
        ids = {}
        for name, (status, updated) in rows.items():
            case = Case(
                code=str(100000 + secrets.randbelow(900000)),
                caller_id=caller.id if name == "stale" else None,
                channel="sms",
                language="es",
                topic="otro",
                status=status,
                reply_by="sms" if name == "stale" else "call",
                created_at=updated,
                updated_at=updated,
            )
            db.add(case)
            await db.flush()
            ids[name] = case.id
        await db.commit()
    assert await purge_now(sessions, outbound, flows["hotline"], now) == 0, "closed now, purged later"
    async with sessions() as db:
        found = {name: await db.get(Case, case_id) for name, case_id in ids.items()}
        statuses = {name: case.status if case else None for name, case in found.items()}
        assert statuses == {"stale": "closed", "recent": "answered", "waiting": "new"}
        assert await db.scalar(select(func.count()).select_from(Contact)) == 0, "her number went with it"
        actions = (
            await db.scalars(select(AuditEntry.action).where(AuditEntry.case_id == ids["stale"]))
        ).all()
        assert actions == ["case_auto_closed"]
