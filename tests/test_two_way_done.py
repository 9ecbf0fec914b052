"""The two-way line as a newcomer would try it: real server, real browser, Twilio mocked at the edge.

A Quechua voice question and a Spanish SMS question reach the queue; a manager listens and answers one by
voice and one by text; the Quechua caller calls again and hears her answer without entering anything; the
Spanish caller gets hers by SMS through the worker; every step is audited; no number is stored anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import respx
from playwright.sync_api import Page, expect

from app.cases.audio import transcode
from app.flows.loader import load_flows
from app.flows.model import FlowDefinition
from app.outbox.admin import run_worker
from app.settings import Settings
from app.simulator import Call, Screen, TextPhone, TwilioSigner
from tests.browser import chromium, create_staff, new_page, require_chromium, sign_in
from tests.conftest import AUTH_TOKEN, ROOT
from tests.outbound import ACCOUNT_SID, API, HOTLINE, MESSAGES_URL
from tests.samples import wav
from tests.server import Service, running_service

QUECHUA_CALLER = "+51964888001"
SPANISH_TEXTER = "+51964888002"
NEEDLES = [n for number in (QUECHUA_CALLER, SPANISH_TEXTER) for n in (number, number[1:], number[3:])]
MANAGER, PASSWORD = "gestora@example.org", "una clave bastante larga"
ANSWER = "Sí. El último monitoreo del agua del río salió dentro de los límites."


@dataclass(frozen=True)
class Questions:
    """The two cases' codes."""

    quechua: str
    spanish: str


async def _walk(phone: Call, keys: list[str]) -> list[Screen]:
    script = iter(keys)
    return [screen async for screen in phone.screens(lambda _: next(script, None))]


async def leave_questions(service: Service, flows: dict[str, FlowDefinition]) -> Questions:
    """She speaks in Quechua and waits for her call; he writes in Spanish and wants an SMS."""
    signer = TwilioSigner(AUTH_TOKEN, service.base_url)
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as client:
        phone = Call(
            client=client, signer=signer, flows=flows, caller=QUECHUA_CALLER, account_sid=ACCOUNT_SID
        )
        await _walk(phone, ["2", "3", "1", "#", "1", "1"])
        texter = TextPhone(client=client, signer=signer, sender=SPANISH_TEXTER)
        for body in ("hola", "1", "3", "1"):
            await texter.text(body)
        reply = (await texter.text("¿Es segura el agua del río Mantaro? Llamen al 964 888 002"))[0]
        assert (await texter.text("2"))[0].startswith("Listo")
    codes = _db(service, "SELECT code, language FROM cases ORDER BY id")
    assert [language for _, language in codes] == ["qu", "es"]
    assert codes[1][0] in reply, "the code comes back by SMS"
    return Questions(quechua=codes[0][0], spanish=codes[1][0])


def settings_of(service: Service) -> Settings:
    """The worker's settings: the service's data dir (its secrets), the Twilio account and number."""
    return Settings(
        data_dir=service.data_dir,
        public_base_url=service.base_url,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_number=HOTLINE,
        flows_dir=ROOT / "voice_flows",
        audio_dir=ROOT / "audio",
    )


async def run_worker_once(service: Service, mp3: bytes) -> respx.Route:
    """`rimay worker --once` against a mocked Twilio: recordings downloaded (and deleted there), SMS sent."""
    with respx.mock(assert_all_called=False) as twilio:
        twilio.get(url__regex=rf"{re.escape(API)}/Recordings/RE\w+\.mp3").mock(
            return_value=httpx.Response(200, content=mp3, headers={"Content-Type": "audio/mpeg"})
        )
        twilio.delete(url__regex=rf"{re.escape(API)}/Recordings/RE\w+\.json").mock(
            return_value=httpx.Response(204)
        )
        messages = twilio.post(MESSAGES_URL).mock(
            return_value=httpx.Response(201, json={"sid": "SM" + "1" * 32})
        )
        await run_worker(settings_of(service), once=True, poll=0.1)
        return messages


def answer_in_the_browser(page: Page, questions: Questions) -> list[str]:
    """Sign in, see both in the queue, listen and answer one by recorded voice, the other by text."""
    pages = []
    sign_in(page, MANAGER, PASSWORD)
    expect(page.locator(f"text={questions.quechua}")).to_be_visible()
    expect(page.locator(f"text={questions.spanish}")).to_be_visible()
    pages.append(page.content())
    page.click(f"text={questions.quechua}")
    page.wait_for_function(
        "() => { const a = document.querySelector('audio.recording'); return a && a.readyState >= 1; }"
    )
    page.eval_on_selector("audio.recording", "a => a.play()")  # she listens to the question...
    page.wait_for_function("() => document.querySelector('audio.recording').currentTime > 0")
    page.click("#record-start")  # ...and records the answer with the (fake) microphone
    expect(page.locator("#record-state")).to_have_text("Grabando…")
    page.wait_for_timeout(1500)
    page.click("#record-stop")
    expect(page.locator("#record-preview")).to_be_visible()
    page.click("#send-voice")
    expect(page.locator("#case-status")).to_have_text("Respondido")
    pages.append(page.content())
    page.goto("/cases")
    page.click(f"text={questions.spanish}")
    expect(page.locator("blockquote.sms-text")).to_contain_text("Llamen al [phone]")
    page.fill("#answer-text", ANSWER)
    page.click("#text-answer button[type=submit]")
    expect(page.locator("blockquote.answer-text")).to_have_text(ANSWER)
    pages.append(page.content())
    return pages


async def call_again(service: Service, flows: dict[str, FlowDefinition]) -> tuple[Screen, httpx.Response]:
    """She calls from the same number and presses nothing: her answer plays; Twilio can fetch it."""
    signer = TwilioSigner(AUTH_TOKEN, service.base_url)
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as client:
        phone = Call(
            client=client, signer=signer, flows=flows, caller=QUECHUA_CALLER, account_sid=ACCOUNT_SID
        )
        [first, _] = await _walk(phone, ["1"])
        url = next(verb.url for verb in first.prompts if verb.url and "/media/answers/" in verb.url)
        parts = urlsplit(url)
        return first, await client.get(f"{parts.path}?{parts.query}")


def _db(service: Service, query: str) -> list[tuple[str, ...]]:
    with contextlib.closing(sqlite3.connect(service.data_dir / "rimay.sqlite3")) as db:
        return db.execute(query).fetchall()


def test_a_question_by_voice_and_one_by_sms_are_answered_and_reach_their_callers(
    tmp_path: Path, audio_data_dir: Path
) -> None:
    """Issue 5's "done when", end to end."""
    require_chromium()
    flows = load_flows(ROOT / "voice_flows")
    hotline = flows["hotline"]
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID}
    with running_service(
        tmp_path, generated_audio=audio_data_dir / "audio", log_level="DEBUG", env=env
    ) as service:
        create_staff(service, MANAGER, PASSWORD)
        questions = asyncio.run(leave_questions(service, flows))
        caller_mp3 = asyncio.run(transcode(wav(3)))
        asyncio.run(run_worker_once(service, caller_mp3))
        assert _db(service, "SELECT status FROM recordings") == [("stored",)]
        with chromium() as browser, new_page(browser, service.base_url) as page:
            pages = answer_in_the_browser(page, questions)
        first, audio = asyncio.run(call_again(service, flows))
        messages = asyncio.run(run_worker_once(service, caller_mp3))

    spoken = [verb.text for verb in first.prompts]
    assert spoken[:4] == [
        hotline.nodes["welcome_back"].prompt["qu"],
        hotline.system["answers_new"]["qu"],
        hotline.system["digit_1"]["qu"],
        hotline.system["answer_intro"]["qu"],
    ]
    assert (audio.status_code, audio.headers["content-type"]) == (200, "audio/mpeg")
    assert messages.call_count == 1
    sent = parse_qs(messages.calls[0].request.content.decode())
    assert sent["To"] == [SPANISH_TEXTER]
    assert sent["Body"] == [f"Rimay, respuesta a su caso {questions.spanish}: {ANSWER}"]

    actions = [action for (action,) in _db(service, "SELECT action FROM audit_log ORDER BY id")]
    steps = ("case_opened", "reply_by_sms", "login_ok", "case_viewed", "answered_voice", "answered_text")
    later = ("recording_stored", "recording_played", "answer_heard", "feedback_answered", "answer_sms_sent")
    for step in (*steps, *later):
        assert step in actions, f"{step} is not in the audit log: {actions}"
    assert actions.count("case_opened") == 2

    stored = [path for path in service.data_dir.rglob("*") if path.is_file() and path.suffix != ".mp3"]
    stored.append(service.log_path)
    for blob in [*(path.read_bytes() for path in stored), *(page.encode() for page in pages)]:
        assert not [needle for needle in NEEDLES if needle.encode() in blob]
    assert "POST /twilio/sms" in service.log_path.read_text()
