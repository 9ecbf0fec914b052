"""Twilio's fallback URLs answer safely without a database: signed only, never a 5xx, always TwiML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.audio.library import AudioLibrary
from app.main import create_app
from app.settings import Settings
from app.simulator import TwilioSigner
from app.sms.segments import Encoding, encoding, segments
from app.webhooks.outage import SMS_TEXT, VOICE_TEXT, voice_apology, write_outage_audio
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL, ROOT

VOICE = "/twilio/voice/fallback"
SMS = "/twilio/sms/fallback"
CALL_SID = "CA" + "0" * 32
MESSAGE_SID = "SM" + "1" * 32
CALLER = "+51987654321"


@pytest.fixture
async def dead_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The real app whose database is a closed port: a fallback must not need it."""
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql://nobody@127.0.0.1:9/none",
        public_base_url=PUBLIC_BASE_URL,
        secret_key="test-secret-key-" + "x" * 32,
        contact_key="test-contact-key-" + "y" * 32,
        twilio_auth_token=AUTH_TOKEN,
        flows_dir=ROOT / "voice_flows",
        audio_dir=ROOT / "audio",
    )
    app = create_app(settings)
    yield app
    await app.state.engine.dispose()


@pytest.fixture
async def http(dead_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the app in process, at its public base URL."""
    transport = httpx.ASGITransport(app=dead_app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_BASE_URL) as client:
        yield client


async def _post(
    http: httpx.AsyncClient, signer: TwilioSigner, path: str, params: dict[str, str]
) -> httpx.Response:
    headers = signer.headers(signer.public(path), params)
    return await http.post(path, data=params, headers=headers)


def _voice_params(error_url: str | None = None) -> dict[str, str]:
    params = {"CallSid": CALL_SID, "From": CALLER, "To": "+51111111111", "ErrorCode": "11200"}
    if error_url is not None:
        params["ErrorUrl"] = error_url
    return params


def _played(body: str) -> list[str]:
    root = ET.fromstring(body)  # noqa: S314 - our own server's TwiML
    return [verb.text or "" for verb in root if verb.tag == "Play"]


def _verbs(body: str) -> list[str]:
    return [verb.tag for verb in ET.fromstring(body)]  # noqa: S314 - our own server's TwiML


async def test_voice_fallback_plays_the_apology_in_every_language_then_hangs_up(
    http: httpx.AsyncClient, signer: TwilioSigner
) -> None:
    """No language known: the shipped es and qu apologies, then <Hangup/>."""
    response = await _post(http, signer, VOICE, _voice_params())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert _verbs(response.text) == ["Play", "Play", "Hangup"]
    played = _played(response.text)
    assert played[0].startswith(f"{PUBLIC_BASE_URL}/audio/es/system/outage.mp3?v=")
    assert played[1].startswith(f"{PUBLIC_BASE_URL}/audio/qu/system/outage.mp3?v=")


@pytest.mark.parametrize("language", ["es", "qu"])
async def test_voice_fallback_speaks_the_language_of_the_failed_url(
    http: httpx.AsyncClient, signer: TwilioSigner, language: str
) -> None:
    """ErrorUrl carries the caller's language: only that apology is played."""
    failed = f"{PUBLIC_BASE_URL}/twilio/voice/sessions/{'a' * 32}/steps/3?lang={language}"
    response = await _post(http, signer, VOICE, _voice_params(failed))
    assert response.status_code == 200
    assert _verbs(response.text) == ["Play", "Hangup"]
    assert f"/audio/{language}/system/outage.mp3?v=" in _played(response.text)[0]


@pytest.mark.parametrize(
    "error_url", ["not a url", f"{PUBLIC_BASE_URL}/x?lang=en", f"{PUBLIC_BASE_URL}/x?lang=", "?lang=<qu>"]
)
async def test_voice_fallback_ignores_an_unknown_language(
    http: httpx.AsyncClient, signer: TwilioSigner, error_url: str
) -> None:
    """A language the flow does not speak (or garbage) means every language, never an error."""
    response = await _post(http, signer, VOICE, _voice_params(error_url))
    assert response.status_code == 200
    assert _verbs(response.text) == ["Play", "Play", "Hangup"]


async def test_the_apology_audio_is_served_without_the_database(
    http: httpx.AsyncClient, signer: TwilioSigner
) -> None:
    """Twilio can fetch what it is told to play while the database is down."""
    response = await _post(http, signer, VOICE, _voice_params())
    for url in _played(response.text):
        audio = await http.get(url.removeprefix(PUBLIC_BASE_URL))
        assert audio.status_code == 200
        assert audio.headers["content-type"] == "audio/mpeg"
        assert 2_000 < len(audio.content) < 20_000


async def test_sms_fallback_answers_in_spanish_and_quechua_in_one_segment(
    http: httpx.AsyncClient, signer: TwilioSigner
) -> None:
    """A texter learns that the line has a problem, in one cheap GSM-7 segment."""
    params = {"MessageSid": MESSAGE_SID, "From": CALLER, "Body": "hola", "ErrorCode": "11200"}
    response = await _post(http, signer, SMS, params)
    assert response.status_code == 200
    messages = [m.text for m in ET.fromstring(response.text).iter("Message")]  # noqa: S314
    assert messages == [SMS_TEXT]
    assert encoding(SMS_TEXT) is Encoding.GSM7
    assert segments(SMS_TEXT) == 1


@pytest.mark.parametrize("sender", ["TWILIO", "12345", "", "anonymous"])
async def test_sms_fallback_does_not_answer_a_sender_that_cannot_read_it(
    http: httpx.AsyncClient, signer: TwilioSigner, sender: str
) -> None:
    """A short code, a name or no sender gets empty TwiML: nothing is sent."""
    params = {"MessageSid": MESSAGE_SID, "From": sender, "Body": "x"}
    response = await _post(http, signer, SMS, params)
    assert response.status_code == 200
    assert list(ET.fromstring(response.text)) == []  # noqa: S314


async def test_sms_fallback_without_a_sender_sends_nothing(
    http: httpx.AsyncClient, signer: TwilioSigner
) -> None:
    """No From field at all: empty TwiML."""
    response = await _post(http, signer, SMS, {"MessageSid": MESSAGE_SID})
    assert response.status_code == 200
    assert list(ET.fromstring(response.text)) == []  # noqa: S314


@pytest.mark.parametrize("path", [VOICE, SMS])
async def test_unsigned_or_wrongly_signed_fallbacks_are_refused(
    http: httpx.AsyncClient, signer: TwilioSigner, path: str
) -> None:
    """Like every webhook: no signature, or one for other parameters, is a 403."""
    params = {"CallSid": CALL_SID, "MessageSid": MESSAGE_SID, "From": CALLER}
    unsigned = await http.post(path, data=params)
    forged = await http.post(
        path, data={**params, "From": "+51900000000"}, headers=signer.headers(signer.public(path), params)
    )
    assert unsigned.status_code == 403
    assert forged.status_code == 403


@pytest.mark.parametrize("path", [VOICE, SMS])
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", "application/x-www-form-urlencoded"),
        (b"%%%&&&===\xff\xfe", "application/x-www-form-urlencoded"),
        (b"--x\r\nContent-Disposition: form-data\r\n\r\n", "multipart/form-data; boundary=x"),
        (b"garbage", "multipart/form-data"),
        (b'{"CallSid": 1}', "application/json"),
        (b"\x00" * 5000, "text/plain"),
    ],
)
async def test_malformed_fallback_bodies_never_get_a_5xx(
    http: httpx.AsyncClient, signer: TwilioSigner, path: str, content: bytes, content_type: str
) -> None:
    """Whatever arrives, signed or not, the answer is a 4xx or valid TwiML."""
    headers = {"content-type": content_type, **signer.headers(signer.public(path), {})}
    response = await http.post(path, content=content, headers=headers)
    assert response.status_code < 500
    if response.status_code == 200:
        ET.fromstring(response.text)  # noqa: S314 - must parse as XML


async def test_a_missing_quechua_file_falls_back_to_spanish_once(tmp_path: Path) -> None:
    """Without the qu file the caller hears the Spanish apology (once); without any, a Spanish <Say>."""
    recorded = tmp_path / "audio"
    write_outage_audio(recorded)
    (recorded / "qu" / "system" / "outage.mp3").unlink()
    library = AudioLibrary(recorded, tmp_path / "none", check_interval=3600)
    body = voice_apology(library, PUBLIC_BASE_URL, ["es", "qu"])
    assert _verbs(body) == ["Play", "Hangup"]
    assert "/audio/es/system/outage.mp3" in _played(body)[0]
    empty = AudioLibrary(tmp_path / "nothing", tmp_path / "none", check_interval=3600)
    body = voice_apology(empty, PUBLIC_BASE_URL, ["qu", "es"])
    assert _verbs(body) == ["Say", "Hangup"]
    assert ET.fromstring(body).find("Say").text == VOICE_TEXT["es"]  # type: ignore[union-attr]  # noqa: S314


def test_the_shipped_audio_is_small_mono_mp3_for_every_language() -> None:
    """Each language with an apology text ships its file, small enough to fetch fast."""
    for language in VOICE_TEXT:
        path = ROOT / "audio" / language / "system" / "outage.mp3"
        data = path.read_bytes()
        assert data[:3] == b"ID3" or data[0] == 0xFF, f"{path} is not an MP3"
        assert len(data) < 20_000
