"""TwiML rendering (app/voice/twiml.py): <Play> of prompt audio, and what is spoken when audio is missing."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from app.audio.library import AudioLibrary
from app.flows.model import FlowDefinition
from app.simulator import Call, TwilioSigner, parse_twiml
from app.voice.twiml import VoiceRenderer
from tests.conftest import CALLER, PUBLIC_BASE_URL
from tests.test_voice_endpoints import texts, walk


async def test_prompts_without_audio_fall_back_to_say_for_spanish(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    app: FastAPI,
    tmp_path: Path,
) -> None:
    """Without audio, Spanish text is spoken with <Say language="es-MX">."""
    app.state.voice.audio = AudioLibrary(tmp_path / "recorded", tmp_path / "generated")
    phone = Call(client=client, signer=signer, flows=flows, caller=CALLER)
    screens = await walk(phone, ["1"])
    assert all(verb.kind == "say" for verb in screens[1].prompts)
    response = await phone.post("/twilio/voice", {})
    assert 'language="es-MX"' in response.text


def _quechuatexts(flow: FlowDefinition) -> set[str]:
    return {text["qu"] for _, text in flow.prompts()}


def _says(body: str) -> list[tuple[str | None, str]]:
    """Each <Say> of a TwiML answer: its language and text."""
    root = ET.fromstring(body)  # noqa: S314 - our own server's TwiML
    return [(say.get("language"), say.text or "") for say in root.iter("Say")]


def _audio_library(tmp_path: Path, flow: FlowDefinition, missing: set[tuple[str, str]]) -> AudioLibrary:
    """A recorded file for every prompt in every language except the (language, key) pairs given."""
    for key, _ in flow.prompts():
        for language in flow.languages:
            if (language, key) not in missing:
                path = tmp_path / "recorded" / language / flow.id / f"{key}.mp3"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"ID3" + f"{language}/{key}".encode())
    return AudioLibrary(tmp_path / "recorded", tmp_path / "generated")


async def test_quechua_prompt_without_audio_plays_the_spanish_audio(
    phone: Call, app: FastAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Quechua is never <Say>-ed: a missing Quechua file plays the same prompt's Spanish audio, logged."""
    hotline = phone.flows["hotline"]
    app.state.voice.audio = _audio_library(tmp_path, hotline, {("qu", "main")})
    with caplog.at_level(logging.ERROR, logger="app.voice.twiml"):
        screens = await walk(phone, ["2", "1", "1", "0"])
    assert all(verb.kind == "play" for screen in screens for verb in screen.prompts)
    [main] = screens[1].prompts
    assert main.url is not None
    assert urlsplit(main.url).path == "/audio/es/hotline/main.mp3"
    assert texts(screens[2]) == [hotline.nodes["library"].prompt["qu"]]
    [record] = [r for r in caplog.records if r.name == "app.voice.twiml"]
    assert "flow hotline, node main, language qu" in record.getMessage()
    assert "played the Spanish audio" in record.getMessage()
    assert CALLER[1:] not in caplog.text


@pytest.mark.parametrize("knows_flows", [True, False], ids=["spanish-text", "no-flows"])
async def test_quechua_prompt_without_any_audio_is_never_said_in_quechua(
    phone: Call, app: FastAPI, tmp_path: Path, knows_flows: bool
) -> None:
    """With no audio at all, a Quechua prompt is said in Spanish (its Spanish text), or else skipped."""
    hotline = phone.flows["hotline"]
    flows = app.state.flows if knows_flows else None
    app.state.voice = VoiceRenderer(AudioLibrary(tmp_path / "r", tmp_path / "g"), PUBLIC_BASE_URL, flows)
    first = await phone.post("/twilio/voice", {})
    action = parse_twiml(first.text, phone.flows).gather_action
    assert action is not None
    chosen = await phone.post(action, {"Digits": "2"})
    assert chosen.status_code == 200
    spanish = [("es-MX", hotline.nodes["main"].prompt["es"])] if knows_flows else []
    assert _says(chosen.text) == spanish
    quechua = _quechuatexts(hotline)
    for body in (first.text, chosen.text):
        assert not [said for _, said in _says(body) if said in quechua]
    assert all(language == "es-MX" for language, _ in _says(first.text))
