"""The case service: opening, answering (text and voice), concurrency, closing, retention."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.callers.models import Caller
from app.cases.errors import CaseChanged, CaseClosed, InvalidAnswer
from app.cases.models import Case, CaseStatus
from app.cases.service import CaseService
from app.contacts.crypto import ContactCipher
from app.contacts.models import Contact
from app.flows.model import FlowDefinition
from app.outbox.models import OutboxMessage
from app.sessions.models import CallSession
from app.settings import Settings
from app.staff.models import StaffUser
from tests.outbound import NUMBER, Clock, Sessions
from tests.samples import wav

TEXTS = {
    "case_text_answer": {"es": "Rimay {code}: {text}", "qu": "Rimay {code}: {text}"},
    "case_voice_answer": {"es": "Rimay {code}: llame y marque 4.", "qu": "Rimay {code}: 4 ñit'iy."},
}


@dataclass
class World:
    """A caller, her call, two managers, and a way to build the service on any session."""

    settings: Settings
    flow: FlowDefinition
    sessions: Sessions
    clock: Clock
    caller_id: int
    call_id: str
    staff: tuple[int, int]

    async def manager(self, db: AsyncSession, which: int = 0) -> StaffUser:
        """One of the two managers, on a database session."""
        staff = await db.get(StaffUser, self.staff[which])
        assert staff is not None
        return staff

    def service(self, db: object) -> CaseService:
        """The service on a database session."""
        cipher = ContactCipher.from_secret(self.settings.contact_secret)
        return CaseService(db, self.settings, cipher, self.flow, clock=self.clock)  # type: ignore[arg-type]


@pytest.fixture
async def world(
    outbound: Settings, sessions: Sessions, flows: dict[str, FlowDefinition], clock: Clock, tmp_path: Path
) -> World:
    """A Quechua-speaking woman's call and two managers in a fresh database."""
    flow = flows["hotline"]
    flow = flow.model_copy(update={"sms": {**flow.sms, **TEXTS}})
    async with sessions() as db:
        caller = Caller(pseudonym="p" * 64, language="qu")
        db.add(caller)
        await db.flush()
        call = CallSession(
            id="s" * 32,
            caller_id=caller.id,
            channel="voice",
            provider_id="CA" + "1" * 32,
            flow_id="hotline",
            language="qu",
            state={},
            gender="mujer",
            age_band="30_44",
            community="huancayo",
        )
        first = StaffUser(email="ana@example.org", password_hash="x", role="manager")
        second = StaffUser(email="luis@example.org", password_hash="x", role="manager")
        db.add_all([call, first, second])
        await db.commit()
        staff = (first.id, second.id)
        caller_id = caller.id
    return World(
        outbound.model_copy(update={"data_dir": tmp_path / "data"}),
        flow,
        sessions,
        clock,
        caller_id,
        "s" * 32,
        staff,
    )


async def _open(
    world: World, text: str | None = None, reply_by_sms: bool = False, language: str | None = None
) -> int:
    async with world.sessions() as db:
        service = world.service(db)
        call = await db.get(CallSession, world.call_id)
        assert call is not None
        case = await service.open(call, "water", text=text)
        case.language = language or case.language
        if reply_by_sms:
            assert await service.reply_by_sms(case, NUMBER)
        await db.commit()
        return case.id


async def test_a_case_gets_a_code_the_sessions_demographics_and_a_masked_text(world: World) -> None:
    """Opening is audited as the caller's act; a number she typed is masked before it is stored."""
    case_id = await _open(world, text="<b>agua</b> llamen al 964 123 987")
    async with world.sessions() as db:
        case = await db.get(Case, case_id)
        assert case is not None
        assert len(case.code) == 6
        assert case.code[0] != "0"
        assert (case.status, case.language, case.topic, case.channel) == ("new", "qu", "water", "voice")
        assert (case.gender, case.age_band, case.community) == ("mujer", "30_44", "huancayo")
        messages = await world.service(db).cases.messages(case_id)
        assert [m.text for m in messages] == ["<b>agua</b> llamen al [phone]"]
        actions = (await db.scalars(select(AuditEntry.action).where(AuditEntry.case_id == case_id))).all()
        assert actions == ["case_opened"]


async def test_codes_are_unique(world: World) -> None:
    """Many cases, no repeated code."""
    codes = set()
    for _ in range(30):
        case_id = await _open(world)
        async with world.sessions() as db:
            case = await db.get(Case, case_id)
            assert case is not None
            codes.add(case.code)
    assert len(codes) == 30


async def test_a_text_answer_to_an_sms_case_is_queued_with_the_answer(world: World) -> None:
    """She chose SMS: the answer is queued in the same transaction and counts as delivered to her."""
    case_id = await _open(world, reply_by_sms=True)
    async with world.sessions() as db:
        service = world.service(db)
        case = await service.get(case_id)
        staff = await world.manager(db)
        answer = await service.answer_text(case, staff, "  El agua se analiza cada mes.  ", case.version)
        await db.commit()
        assert answer.text == "El agua se analiza cada mes."
        assert answer.heard_at is not None
        assert case.status == CaseStatus.ANSWERED
        assert case.first_answered_at is not None
        assert case.assigned_to == staff.id
        bodies = (await db.scalars(select(OutboxMessage.body))).all()
        assert bodies == [f"Rimay {case.code}: El agua se analiza cada mes."]
        assert await service.unheard(world.caller_id) == []


async def test_a_text_answer_for_a_caller_who_calls_back_waits_for_her(world: World) -> None:
    """Without SMS nothing is sent; the answer waits, unheard, until she hears it."""
    case_id = await _open(world, language="es")
    async with world.sessions() as db:
        service = world.service(db)
        case = await service.get(case_id)
        staff = await world.manager(db)
        await service.answer_text(case, staff, "Respuesta", case.version)
        await db.commit()
        assert await db.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        waiting = await service.unheard(world.caller_id)
        assert [(c.id, a.text) for c, a in waiting] == [(case_id, "Respuesta")]
        await service.heard(waiting[0][1])
        await service.feedback(waiting[0][1], "answered")
        await db.commit()
        assert await service.unheard(world.caller_id) == []


async def test_a_stale_version_is_refused(world: World) -> None:
    """The page was loaded before another manager acted: the second is told it changed."""
    case_id = await _open(world, language="es")
    async with world.sessions() as db:
        service = world.service(db)
        case = await service.get(case_id)
        staff = await world.manager(db)
        loaded = case.version
        await service.assign(case, staff, loaded)
        await db.commit()
        with pytest.raises(CaseChanged):
            await service.answer_text(case, staff, "tarde", loaded)


async def test_two_managers_answering_at_once_the_second_is_told(world: World) -> None:
    """Both loaded the same version; the second flush loses the optimistic-lock race (PostgreSQL)."""
    if world.settings.sqlalchemy_url.startswith("sqlite"):
        pytest.skip("SQLite's BEGIN IMMEDIATE serializes writers; the stale-version test covers it there")
    case_id = await _open(world, language="es")
    async with world.sessions() as first_db, world.sessions() as second_db:
        first, second = world.service(first_db), world.service(second_db)
        case_a, case_b = await first.get(case_id), await second.get(case_id)
        ana, luis = (
            await first_db.get(StaffUser, world.staff[0]),
            await second_db.get(StaffUser, world.staff[1]),
        )
        assert ana is not None
        assert luis is not None
        await first.answer_text(case_a, ana, "primera", case_a.version)
        await first_db.commit()
        with pytest.raises(CaseChanged):
            await second.answer_text(case_b, luis, "segunda", case_b.version)
        await second_db.rollback()
    async with world.sessions() as db:
        answers = await world.service(db).cases.answers(case_id)
        assert [a.text for a in answers] == ["primera"]


async def test_bad_answers_and_notes_are_refused(world: World) -> None:
    """Empty or overlong texts, and acting on a closed case."""
    case_id = await _open(world, language="es")
    async with world.sessions() as db:
        service = world.service(db)
        case = await service.get(case_id)
        staff = await world.manager(db)
        with pytest.raises(InvalidAnswer, match="empty"):
            await service.answer_text(case, staff, "   ", case.version)
        with pytest.raises(InvalidAnswer, match="longer"):
            await service.answer_text(case, staff, "x" * 1001, case.version)
        with pytest.raises(InvalidAnswer, match="empty"):
            await service.note(case, staff, "")
        note = await service.note(case, staff, "Consultar con OEFA")
        assert note.text == "Consultar con OEFA"
        await service.close(case, staff, case.version)
        with pytest.raises(CaseClosed):
            await service.answer_text(case, staff, "tarde", case.version)


async def test_closing_forgets_the_number_once_no_open_case_needs_it(world: World) -> None:
    """Two SMS cases: the number stays until both are closed."""
    first_id = await _open(world, reply_by_sms=True)
    second_id = await _open(world, reply_by_sms=True)
    async with world.sessions() as db:
        service = world.service(db)
        staff = await world.manager(db)
        first = await service.get(first_id)
        await service.close(first, staff, first.version)
        await db.commit()
        assert await db.scalar(select(func.count()).select_from(Contact)) == 1
        second = await service.get(second_id)
        await service.close(second, staff, second.version)
        await db.commit()
        assert await db.scalar(select(func.count()).select_from(Contact)) == 0


async def test_a_follow_up_reopens_a_closed_case(world: World) -> None:
    """After hearing the answer she asks more: the case is new again."""
    case_id = await _open(world)
    async with world.sessions() as db:
        service = world.service(db)
        staff = await world.manager(db)
        case = await service.get(case_id)
        await service.close(case, staff, case.version)
        await service.follow_up(case, "sms", text="¿Y el aire?")
        await db.commit()
        assert (case.status, case.closed_at) == ("new", None)
        assert [m.text for m in await service.cases.messages(case_id)] == [None, "¿Y el aire?"]


@pytest.mark.audio
async def test_a_voice_answer_is_converted_stored_privately_and_announced_by_sms(world: World) -> None:
    """A WAV becomes an MP3 in the data dir (0600); an SMS tells her to call and press 4."""
    case_id = await _open(world, reply_by_sms=True)
    async with world.sessions() as db:
        service = world.service(db)
        staff = await world.manager(db)
        case = await service.get(case_id)
        answer = await service.answer_voice(case, staff, wav(), case.version)
        await db.commit()
        path = service.audio_path(answer)
        assert path.read_bytes()[:3] in {b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"}
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert (answer.kind, answer.media_type, answer.heard_at) == ("voice", "audio/mpeg", None)
        bodies = (await db.scalars(select(OutboxMessage.body))).all()
        assert bodies == [f"Rimay {case.code}: 4 ñit'iy."]


@pytest.mark.audio
@pytest.mark.parametrize(
    ("upload", "message"),
    [(b"", "empty"), (b"<html>not audio</html>" * 50, "not audio"), (b"\x00" * 4000, "not audio")],
)
async def test_a_voice_answer_that_is_not_audio_is_refused(world: World, upload: bytes, message: str) -> None:
    """Text, zeros or nothing: refused with a clear reason, nothing stored."""
    case_id = await _open(world)
    async with world.sessions() as db:
        service = world.service(db)
        staff = await world.manager(db)
        case = await service.get(case_id)
        with pytest.raises(InvalidAnswer, match=message):
            await service.answer_voice(case, staff, upload, case.version)
        assert not (world.settings.data_dir / "answers").exists() or not any(
            (world.settings.data_dir / "answers").iterdir()
        )


async def test_a_voice_answer_too_large_is_refused(world: World) -> None:
    """Over the configured size: refused before any conversion."""
    world.settings = world.settings.model_copy(update={"answer_upload_max_bytes": 100_000})
    case_id = await _open(world)
    async with world.sessions() as db:
        service = world.service(db)
        staff = await world.manager(db)
        case = await service.get(case_id)
        with pytest.raises(InvalidAnswer, match="larger"):
            await service.answer_voice(case, staff, b"x" * 100_001, case.version)


@pytest.mark.audio
async def test_purge_deletes_closed_cases_past_retention_with_their_audio(world: World) -> None:
    """Retention: closed long enough ago, gone with its files; the audit log keeps the history."""
    old_id = await _open(world)
    open_id = await _open(world)
    async with world.sessions() as db:
        service = world.service(db)
        staff = await world.manager(db)
        old = await service.get(old_id)
        answer = await service.answer_voice(old, staff, wav(), old.version)
        await service.close(old, staff, old.version)
        await db.commit()
        path = service.audio_path(answer)
        assert path.exists()
        world.clock.advance(days=world.settings.case_retention_days + 1)
        assert await service.purge(world.clock()) == 1
        await db.commit()
        assert not path.exists()
        assert await db.get(Case, old_id) is None
        assert await db.get(Case, open_id) is not None
        actions = (await db.scalars(select(AuditEntry.action).where(AuditEntry.case_id == old_id))).all()
        assert "case_purged" in actions
        assert "answered_voice" in actions


async def test_a_follow_up_after_her_number_went_waits_for_her_call(world: World) -> None:
    """Closing deleted her number; her follow-up reopens the case as "she calls again", honestly."""
    case_id = await _open(world, reply_by_sms=True, language="es")
    async with world.sessions() as db:
        service = world.service(db)
        staff = await world.manager(db)
        case = await service.get(case_id)
        await service.close(case, staff, case.version)
        assert not await service.reaches_by_sms(case)
        await service.follow_up(case, "voice", text="¿Y después?")
        await db.commit()
        assert (case.status, case.reply_by) == ("new", "call")
        answer = await service.answer_text(case, staff, "Le respondemos aquí.", case.version)
        await db.commit()
        assert answer.heard_at is None, "it waits for her call"
        assert await db.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        actions = (
            await db.scalars(select(AuditEntry.detail).where(AuditEntry.action == "answered_text"))
        ).all()
        assert actions == ["waits for her call"]
