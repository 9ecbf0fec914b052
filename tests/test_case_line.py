"""The two-way line end to end: questions left by voice and SMS, answered, heard, followed up."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.cases.models import Case, CaseAnswer, CaseMessage
from app.cases.service import CaseService
from app.contacts.crypto import ContactCipher
from app.contacts.models import Contact
from app.flows.model import FlowDefinition
from app.recordings.models import Recording
from app.settings import Settings
from app.simulator import Call, Screen, TextPhone, TwilioSigner, parse_twiml
from app.staff.models import StaffUser
from tests.outbound import ACCOUNT_SID, Sessions
from tests.samples import wav
from tests.test_broadcasts import send_all

QUECHUA_CALLER = "+51964777001"
SPANISH_TEXTER = "+51964777002"
OTHER_PHONE = "+51964777003"


@pytest.fixture
def line(app: FastAPI, outbound: Settings, tmp_path: Path, audio_data_dir: Path) -> Settings:
    """The app knows its Twilio account and keeps voice answers in a data dir of this test's own."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "audio").symlink_to(audio_data_dir / "audio", target_is_directory=True)
    settings = outbound.model_copy(update={"data_dir": data_dir})
    app.state.settings = settings
    return settings


def _call(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], caller: str
) -> Call:
    return Call(client=client, signer=signer, flows=flows, caller=caller, account_sid=ACCOUNT_SID)


async def _walk(phone: Call, keys: list[str]) -> list[Screen]:
    script = iter(keys)
    return [screen async for screen in phone.screens(lambda _: next(script, None))]


def _texts(screen: Screen) -> list[str]:
    return [verb.text for verb in screen.prompts]


async def _cases(sessions: Sessions) -> list[Case]:
    async with sessions() as db:
        return list((await db.scalars(select(Case).order_by(Case.id))).all())


async def _service(db: object, settings: Settings, flows: dict[str, FlowDefinition]) -> CaseService:
    cipher = ContactCipher.from_secret(settings.contact_secret)
    return CaseService(db, settings, cipher, flows["hotline"])  # type: ignore[arg-type]


async def _manager(db: object) -> StaffUser:
    staff = StaffUser(email="ana@example.org", password_hash="x", role="manager")
    db.add(staff)  # type: ignore[attr-defined]
    await db.flush()  # type: ignore[attr-defined]
    return staff


async def _answer(
    sessions: Sessions,
    settings: Settings,
    flows: dict[str, FlowDefinition],
    case_id: int,
    text: str,
    *,
    close: bool = False,
) -> None:
    """A manager answers a case by text (and closes it)."""
    async with sessions() as db:
        service = await _service(db, settings, flows)
        staff = await _manager(db)
        case = await service.get(case_id)
        await service.answer_text(case, staff, text, case.version)
        if close:
            await service.close(case, staff, case.version)
        await db.commit()


async def test_a_quechua_voice_question_gets_a_code_and_its_voice_answer_is_heard_on_the_next_call(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    line: Settings,
    sessions: Sessions,
) -> None:
    """Record, listen back, keep; hear the code twice; call again and hear the answer unasked."""
    hotline = flows["hotline"]
    phone = _call(client, signer, flows, QUECHUA_CALLER)
    # language qu, main 3, topic 1 (water), speak (#), 2 listen back, 1 keep, reply 1 (I will call)
    screens = await _walk(phone, ["2", "3", "1", "#", "2", "1", "1"])
    assert screens[3].record_action is not None, "the question is recorded after the tone"
    assert _texts(screens[4])[0] == hotline.nodes["ask_review"].prompt["qu"]
    played_back = screens[5].prompts[0]
    assert played_back.url is not None
    assert played_back.url.startswith(
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE"
    )
    [case] = await _cases(sessions)
    assert (case.language, case.topic, case.channel, case.reply_by, case.status) == (
        "qu",
        "agua_ambiente",
        "voice",
        "call",
        "new",
    )
    code_screen = _texts(screens[6])
    digits = [hotline.system[f"digit_{d}"]["qu"] for d in case.code]
    start = code_screen.index(hotline.nodes["ask_code"].prompt["qu"])
    again = hotline.system["code_again"]["qu"]
    assert code_screen[start : start + 14] == [
        hotline.nodes["ask_code"].prompt["qu"],
        *digits,
        again,
        *digits,
    ]
    assert all(verb.kind == "play" for verb in screens[6].prompts), "Quechua is only ever played"
    async with sessions() as db:
        [message] = (await db.scalars(select(CaseMessage))).all()
        recording = await db.get(Recording, message.recording_id)
        assert recording is not None
        assert recording.status == "pending", "the worker fetches it from Twilio, then deletes it there"
        assert await db.scalar(select(func.count()).select_from(Contact)) == 0, "call back: nothing kept"
        service = await _service(db, line, flows)
        staff = await _manager(db)
        case = await service.get(case.id)
        answer = await service.answer_voice(case, staff, wav(2.0), case.version)
        await db.commit()
        audio_id = answer.audio_id

    again_call = _call(client, signer, flows, QUECHUA_CALLER)
    [first, after] = await _walk(again_call, ["1"])
    spoken = _texts(first)
    assert spoken[:4] == [
        hotline.nodes["welcome_back"].prompt["qu"],
        hotline.system["answers_new"]["qu"],
        hotline.system["digit_1"]["qu"],
        hotline.system["answer_intro"]["qu"],
    ]
    answer_url = first.prompts[4].url
    assert answer_url is not None
    assert f"/media/answers/{audio_id}.mp3?" in answer_url
    assert spoken[5] == hotline.system["answer_feedback"]["qu"]
    assert first.gather_action is not None, "she can answer 1 (it helped), 2 (follow up) or 0 (again)"
    assert _texts(after)[:2] == [hotline.system["answer_thanks"]["qu"], hotline.nodes["main"].prompt["qu"]]
    audio = await client.get(urlsplit(answer_url).path + "?" + urlsplit(answer_url).query)
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/mpeg"
    assert len(audio.content) > 1000
    async with sessions() as db:
        stored = await db.scalar(select(CaseAnswer))
        assert stored is not None
        assert stored.heard_at is not None
        assert stored.feedback == "answered"
    third = _call(client, signer, flows, QUECHUA_CALLER)
    [welcome, *_] = await _walk(third, [])
    assert hotline.system["answers_new"]["qu"] not in _texts(welcome), "a heard answer is not announced again"


async def test_a_spanish_sms_question_is_answered_by_sms_through_the_worker(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    line: Settings,
    sessions: Sessions,
    flows: dict[str, FlowDefinition],
) -> None:
    """The text becomes the case (escaped later, masked now), the code comes back, the answer by SMS."""
    texter = TextPhone(client=client, signer=signer, sender=SPANISH_TEXTER)
    await texter.text("hola")
    await texter.text("1")
    topics = await texter.text("3")
    assert "1 Agua y ambiente" in topics[0]
    assert "Escriba su pregunta" in (await texter.text("4"))[0]
    question = "<script>alert(1)</script> ¿El agua del río es segura? Llamen al 964 777 002"
    reply = (await texter.text(question))[0]
    code = re.search(r"\b(\d{6})\b", reply)
    assert code is not None, reply
    assert "1 Llamaré" in reply
    assert "Responda 0" not in reply, "the code and the choice fit in one reply"
    done = (await texter.text("2"))[0]
    assert "Le responderemos pronto" in done
    [case] = await _cases(sessions)
    assert (case.code, case.language, case.topic, case.channel, case.reply_by) == (
        code.group(1),
        "es",
        "salud",
        "sms",
        "sms",
    )
    async with sessions() as db:
        [message] = (await db.scalars(select(CaseMessage))).all()
        assert message.text == "<script>alert(1)</script> ¿El agua del río es segura? Llamen al [phone]"
        contact = await db.scalar(select(Contact))
        assert contact is not None
        assert contact.consent_sms_replies
        service = await _service(db, line, flows)
        staff = await _manager(db)
        case = await service.get(case.id)
        await service.answer_text(case, staff, "Sí: el último análisis de la ANA salió bien.", case.version)
        await db.commit()
    route = await send_all(sessions, line)
    assert route.call_count == 1
    sent = parse_qs(route.calls[0].request.content.decode())
    assert sent["To"] == [SPANISH_TEXTER]
    assert sent["Body"] == [
        f"Rimay, respuesta a su caso {code.group(1)}: Sí: el último análisis de la ANA salió bien."
    ]
    async with sessions() as db:
        logged = (await db.scalars(select(AuditEntry.action).where(AuditEntry.case_id == case.id))).all()
        assert logged[-2:] == ["answered_text", "answer_sms_sent"], (
            "the worker's send is in the case's history"
        )


async def test_a_code_from_another_phone_plays_the_answer_and_wrong_codes_are_throttled(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    line: Settings,
    sessions: Sessions,
) -> None:
    """Unknown codes are re-asked; a waiting case says so; the right code plays; guessing stops at 5."""
    hotline = flows["hotline"]
    await _walk(_call(client, signer, flows, QUECHUA_CALLER), ["1", "3", "6", "#", "1", "1"])
    [case] = await _cases(sessions)
    other = _call(client, signer, flows, OTHER_PHONE)
    screens = await _walk(other, ["1", "4", "000001", case.code])
    assert _texts(screens[2]) == [hotline.nodes["my_answers"].prompt["es"]]
    assert _texts(screens[3])[:2] == [
        hotline.system["code_unknown"]["es"],
        hotline.nodes["my_answers"].prompt["es"],
    ]
    assert _texts(screens[4])[:2] == [
        hotline.system["no_answer_yet"]["es"],
        hotline.nodes["main"].prompt["es"],
    ]
    await _answer(sessions, line, flows, case.id, "Puede presentar su denuncia en la OEFA.")
    # The other phone's language is remembered now: its calls start at the main menu.
    heard = await _walk(_call(client, signer, flows, OTHER_PHONE), ["4", case.code, "1"])
    assert [(verb.kind, verb.text) for verb in heard[2].prompts[:2]] == [
        ("play", hotline.system["answer_intro"]["es"]),
        ("say", "Puede presentar su denuncia en la OEFA."),
    ]
    for wrong in (["111111", "222222"], ["333333", "444444"]):
        await _walk(_call(client, signer, flows, OTHER_PHONE), ["4", *wrong])
    locked = await _walk(_call(client, signer, flows, OTHER_PHONE), ["4", case.code])
    assert _texts(locked[2])[:2] == [hotline.system["code_locked"]["es"], hotline.nodes["main"].prompt["es"]]


async def test_a_follow_up_after_hearing_an_answer_reopens_the_case(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    line: Settings,
    sessions: Sessions,
) -> None:
    """2 after the answer: a new recording is added to the same case, which is new again."""
    hotline = flows["hotline"]
    await _walk(_call(client, signer, flows, QUECHUA_CALLER), ["1", "3", "2", "#", "1", "1"])
    [case] = await _cases(sessions)
    await _answer(sessions, line, flows, case.id, "La titulación la ve la DRA.", close=True)
    screens = await _walk(_call(client, signer, flows, QUECHUA_CALLER), ["2", "#", "1"])
    assert _texts(screens[1])[0] == hotline.nodes["follow_up_record"].prompt["es"]
    assert _texts(screens[3])[0] == hotline.nodes["follow_up_saved"].prompt["es"]
    [reopened] = await _cases(sessions)
    assert (reopened.id, reopened.status, reopened.closed_at) == (case.id, "new", None)
    async with sessions() as db:
        messages = (await db.scalars(select(CaseMessage).order_by(CaseMessage.id))).all()
        assert [m.recording_id is not None for m in messages] == [True, True]
        assert (await db.scalar(select(CaseAnswer)) or CaseAnswer()).feedback == "follow_up"


async def test_an_empty_recording_is_asked_for_again_and_a_foreign_url_is_never_fetched(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    line: Settings,
    sessions: Sessions,
) -> None:
    """Silence re-asks; a recording URL outside the allow-list opens the case without the recording."""
    hotline = flows["hotline"]
    phone = _call(client, signer, flows, QUECHUA_CALLER)
    screens = await _walk(phone, ["1", "3", "1"])
    record_action = screens[-1].record_action
    assert record_action is not None
    empty = {**phone.recorded("#"), "RecordingDuration": "0"}
    silence = await phone.post(record_action, empty)
    again = parse_twiml(silence.text, flows)
    assert _texts(again)[:2] == [hotline.system["no_input"]["es"], hotline.nodes["ask_record"].prompt["es"]]
    assert again.record_action is not None, "she is asked to record again"
    next_action = re.search(r'<Record action="([^"]+)"', silence.text)
    assert next_action is not None
    foreign = {**phone.recorded("#"), "RecordingUrl": "https://evil.example.org/rec.mp3"}
    review = await phone.post(next_action.group(1).replace("&amp;", "&"), foreign)
    assert review.status_code == 200
    keep = re.search(r'<Gather action="([^"]+)"', review.text)
    assert keep is not None
    coded = await phone.post(keep.group(1).replace("&amp;", "&"), {"Digits": "1"})
    assert coded.status_code == 200
    [case] = await _cases(sessions)
    async with sessions() as db:
        [message] = (await db.scalars(select(CaseMessage))).all()
        assert message.recording_id is None
        assert await db.scalar(select(func.count()).select_from(Recording)) == 0
    assert case.status == "new"


async def test_a_withheld_number_cannot_choose_sms_and_hears_why(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    line: Settings,
    sessions: Sessions,
) -> None:
    """No number, no SMS: she is told, and the answer waits for her call (her code)."""
    hotline = flows["hotline"]
    phone = _call(client, signer, flows, "anonymous")
    screens = await _walk(phone, ["1", "3", "1", "#", "1", "2"])
    assert _texts(screens[-1])[0] == hotline.system["no_number"]["es"]
    [case] = await _cases(sessions)
    assert case.reply_by == "call"
    assert case.caller_id is None


@pytest.mark.parametrize(
    "query",
    ["", "?expires=9999999999&signature=bad", "?expires=1&signature=x", "?expires=abc&signature=x"],
)
async def test_answer_audio_needs_a_valid_signature(
    client: httpx.AsyncClient, line: Settings, query: str
) -> None:
    """Unsigned, forged, expired and malformed URLs: 404 (or 422 for a non-number), never the file."""
    response = await client.get(f"/media/answers/{'a' * 32}.mp3{query}")
    assert response.status_code in {404, 422}
    assert response.headers["content-type"].startswith("application/json")


async def test_unknown_answer_audio_with_a_valid_signature_is_404(
    app: FastAPI, client: httpx.AsyncClient, line: Settings
) -> None:
    """A signed URL for a file that is gone (purged) is 404."""
    url = app.state.media_signer.url("", "b" * 32)
    assert (await client.get(url)).status_code == 404
    assert (await client.get("/media/answers/..%2F..%2Fetc.mp3")).status_code == 404


async def test_a_recording_for_an_unknown_call_is_apologised_for_and_stores_nothing(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    line: Settings,
    sessions: Sessions,
) -> None:
    """A recording posted to a session that does not exist: a spoken apology, no case, no recording."""
    phone = _call(client, signer, flows, QUECHUA_CALLER)
    response = await phone.post(f"/twilio/voice/sessions/{'0' * 32}/steps/3", phone.recorded("#"))
    assert response.status_code == 200
    assert "<Hangup" in response.text
    assert await _cases(sessions) == []
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(Recording)) == 0
