"""A terminal phone: walks the hotline through the real webhooks with requests signed as Twilio signs them."""

from __future__ import annotations

import re
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import RequestValidator

from app.flows.model import FlowDefinition
from app.webhooks.signature import SIGNATURE_HEADER

HANG_UP = "h"
_AUDIO_PATH = re.compile(r"^/audio/(?P<lang>[^/]+)/(?P<flow>[^/]+)/(?P<key>[^/.]+)\.\w+$")


@dataclass
class Verb:
    """One spoken or played prompt, with its text recovered for the terminal."""

    kind: str
    text: str
    url: str | None = None


@dataclass
class Screen:
    """What one TwiML answer asks of the phone."""

    prompts: list[Verb] = field(default_factory=list)
    gather_action: str | None = None
    record_action: str | None = None
    hangup: bool = False


class TwilioSigner:
    """Signs requests exactly as Twilio does, against the service's public base URL."""

    def __init__(self, auth_token: str, public_base_url: str) -> None:
        self.validator = RequestValidator(auth_token)
        self.public_base_url = public_base_url.rstrip("/")

    def public(self, url_or_path: str) -> str:
        """The public URL for a path (or an absolute action URL as given)."""
        if url_or_path.startswith(("http://", "https://")):
            return url_or_path
        return f"{self.public_base_url}{url_or_path}"

    def headers(self, public_url: str, params: dict[str, str]) -> dict[str, str]:
        """The signature header for a POST of ``params`` to ``public_url``."""
        return {SIGNATURE_HEADER: self.validator.compute_signature(public_url, params)}


def parse_twiml(body: str, flows: dict[str, FlowDefinition]) -> Screen:
    """Read TwiML into prompts (with their text) and what comes next."""
    root = ET.fromstring(body)  # noqa: S314 - our own server's TwiML, not untrusted input
    screen = Screen()
    for verb in root.iter():
        if verb.tag == "Play" and verb.text:
            screen.prompts.append(Verb("play", _text_for_audio(verb.text, flows), verb.text))
        elif verb.tag == "Say" and verb.text:
            screen.prompts.append(Verb("say", verb.text))
        elif verb.tag == "Gather":
            screen.gather_action = verb.get("action")
        elif verb.tag == "Record":
            screen.record_action = verb.get("action")
        elif verb.tag == "Hangup":
            screen.hangup = True
    return screen


def _text_for_audio(url: str, flows: dict[str, FlowDefinition]) -> str:
    match = _AUDIO_PATH.match(urlsplit(url).path)
    if match is None or match["flow"] not in flows:
        return f"[audio {url}]"
    prompts = dict(flows[match["flow"]].prompts())
    return prompts.get(match["key"], {}).get(match["lang"], f"[audio {url}]")


@dataclass
class Call:
    """One simulated call: a CallSid, a caller number and the signed HTTP client."""

    client: httpx.AsyncClient
    signer: TwilioSigner
    flows: dict[str, FlowDefinition]
    caller: str
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    hotline: str = "+15005550006"
    account_sid: str = "AC" + "0" * 32
    started: float = field(default_factory=time.monotonic)

    def recorded(self, pressed: str) -> dict[str, str]:
        """What Twilio posts after <Record>: `*` ends it at once (a skip), anything else is speech."""
        sid = "RE" + secrets.token_hex(16)
        url = f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"
        duration = "0" if pressed == "*" else "7"
        return {
            "RecordingSid": sid,
            "RecordingUrl": url,
            "RecordingDuration": duration,
            "Digits": pressed or "#",
        }

    async def post(self, url_or_path: str, extra: dict[str, str]) -> httpx.Response:
        """POST a signed webhook like Twilio would."""
        params = {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": self.caller,
            "To": self.hotline,
            "Direction": "inbound",
            **extra,
        }
        public_url = self.signer.public(url_or_path)
        path = urlsplit(public_url)
        local = path.path + (f"?{path.query}" if path.query else "")
        return await self.client.post(local, data=params, headers=self.signer.headers(public_url, params))

    async def screens(self, keys: Callable[[Screen], str | None]) -> AsyncIterator[Screen]:
        """Walk the call: yield each screen and answer it with ``keys`` (None hangs up)."""
        response = await self.post("/twilio/voice", {"CallStatus": "ringing"})
        while True:
            response.raise_for_status()
            screen = parse_twiml(response.text, self.flows)
            yield screen
            action = screen.gather_action or screen.record_action
            if screen.hangup or action is None:
                break
            pressed = keys(screen)
            if pressed is None:
                break
            extra = self.recorded(pressed) if screen.record_action else {"Digits": pressed}
            response = await self.post(action, {**extra, "CallStatus": "in-progress"})
        duration = str(int(time.monotonic() - self.started))
        await self.post("/twilio/voice/status", {"CallStatus": "completed", "CallDuration": duration})


def parse_messages(body: str) -> list[str]:
    """The texts of the <Message> verbs in an SMS reply (none when the hotline stays silent)."""
    root = ET.fromstring(body)  # noqa: S314 - our own server's TwiML, not untrusted input
    return [message.text or "" for message in root.iter("Message")]


@dataclass
class TextPhone:
    """A simulated phone texting the hotline, as Twilio delivers SMS."""

    client: httpx.AsyncClient
    signer: TwilioSigner
    sender: str
    hotline: str = "+15005550006"

    async def send(self, body: str, message_sid: str | None = None) -> httpx.Response:
        """Deliver one SMS (a fixed MessageSid simulates a redelivery)."""
        params = {
            "MessageSid": message_sid or "SM" + secrets.token_hex(16),
            "AccountSid": "AC" + "0" * 32,
            "From": self.sender,
            "To": self.hotline,
            "Body": body,
            "NumMedia": "0",
        }
        public_url = self.signer.public("/twilio/sms")
        return await self.client.post(
            "/twilio/sms", data=params, headers=self.signer.headers(public_url, params)
        )

    async def text(self, body: str) -> list[str]:
        """Send a message and return the texts of the reply."""
        response = await self.send(body)
        response.raise_for_status()
        return parse_messages(response.text)
