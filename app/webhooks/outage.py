"""What a caller hears or reads when the database is down: shipped audio, no database, bounded in time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from app.audio.library import AudioLibrary
from app.audio.synth import EspeakSynthesizer, Synthesizer

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

DEADLINE_SECONDS = 1.5
"""Twilio waits 15 s, but a caller hears silence meanwhile: a webhook the database cannot serve in this
long is answered with the apology instead."""

AUDIO_FLOW = "system"
AUDIO_KEY = "outage"
"""The shipped recording is ``audio/<lang>/system/outage.mp3``, served like any prompt by the library."""

VOICE_TEXT = {
    "es": "Disculpe, hubo un problema. Por favor, vuelva a llamar más tarde.",
    "qu": "Pampachaykuway, huk sasachakuy kapun. Ama hina kaspa, qhipaman yapamanta waqyamuy.",
}
"""The flow's own error prompt, word for word, so the shipped audio says what callers already know."""
SAY_LANGUAGE = "es"
SAY_VOICE = "es-MX"

SMS_TEXT = (
    "Rimay tiene un problema tecnico. Escriba de nuevo mas tarde. / "
    "Rimaypi huk sasachakuy kapun. Qhipaman yapamanta qillqamuy."
)
"""Both languages in one GSM-7 segment: we do not know the texter's language without the database, and
an accent outside GSM-7 would triple the cost."""

_abandoned: set[asyncio.Task[Any]] = set()
"""Work cancelled at its deadline and still unwinding; held so it is not garbage-collected."""

DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    ConnectionError,
    TimeoutError,
)
"""Failures that mean the database cannot be reached right now (not a bug in a query)."""


def is_database_outage(error: BaseException) -> bool:
    """True for an error that says the database is unreachable, hung or out of connections."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, DATABASE_ERRORS)


async def within(work: Callable[[], Awaitable[T]], seconds: float) -> T | None:
    """The work's result, or None when it takes longer: then it is cancelled and left to unwind."""
    task: asyncio.Task[T] = asyncio.ensure_future(work())
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if done:
        return task.result()
    # Not awaited: psycopg spends up to 10 s trying to cancel a query on a frozen server before it
    # closes the connection, and the caller must not wait for that.
    task.cancel()
    _abandoned.add(task)
    task.add_done_callback(_forget)
    return None


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("abandoned work ended with %s", type(task.exception()).__name__)


async def with_own_dependencies(request: Request, handler: Callable[[], Awaitable[R]]) -> R:
    """Run a route handler with dependency exit stacks of its own, entered and left in this task."""
    # FastAPI keeps the request's dependencies (the database session) open until after the response,
    # in stacks owned by the calling task; a handler run in a task of its own (so that it can be
    # abandoned) must open and close them itself.
    async with AsyncExitStack() as request_stack:
        request.scope["fastapi_inner_astack"] = request_stack
        async with AsyncExitStack() as function_stack:
            request.scope["fastapi_function_astack"] = function_stack
            return await handler()


def caller_languages(request: Request, form: dict[str, str] | None = None) -> list[str]:
    """The caller's language from the action URL (or Twilio's ErrorUrl), else every flow language."""
    state = request.app.state
    known = list(state.flows[state.settings.default_flow].languages)
    language = request.query_params.get("lang")
    if language is None and form is not None:
        # A fallback request names the URL that failed; its query holds the caller's language.
        values = parse_qs(urlsplit(form.get("ErrorUrl", "")[:2000]).query).get("lang", [])
        language = values[0] if values else None
    return [language] if language is not None and language in known else known


def voice_apology(audio: AudioLibrary, base_url: str, languages: Iterable[str]) -> str:
    """The shipped apology in each language (Spanish <Say> when a file is missing), then <Hangup/>."""
    response = VoiceResponse()
    spoken: set[str] = set()
    for language in languages:
        found = audio.lookup(language, AUDIO_FLOW, AUDIO_KEY)
        if found is None:
            log.error("no outage audio for %s in the audio dir: the caller hears Spanish", language)
            found = audio.lookup(SAY_LANGUAGE, AUDIO_FLOW, AUDIO_KEY)
        # Twice the same Spanish apology (once for a missing Quechua file) would only delay the hang-up.
        said = found.url_path if found is not None else "say"
        if said in spoken:
            continue
        spoken.add(said)
        if found is not None:
            response.play(f"{base_url}{found.url_path}")
        else:
            response.say(VOICE_TEXT[SAY_LANGUAGE], language=SAY_VOICE)
    response.hangup()
    return str(response)


def request_voice_apology(request: Request, form: dict[str, str] | None = None) -> str:
    """The voice apology for this request's caller, from the app's audio library."""
    state = request.app.state
    return voice_apology(state.audio, state.settings.public_base_url, caller_languages(request, form))


def sms_apology() -> str:
    """One short text in Spanish and Quechua: the line has a problem, write again later."""
    response = MessagingResponse()
    response.message(SMS_TEXT)
    return str(response)


def outage_synthesizer() -> EspeakSynthesizer:
    """espeak-ng at a phone's bandwidth: Twilio plays 8 kHz anyway, and each file stays near 12 KB."""
    return EspeakSynthesizer(bitrate_kbps=16, sample_rate_khz="16")


def write_outage_audio(audio_dir: Path, synthesizer: Synthesizer | None = None) -> list[Path]:
    """Synthesise the shipped apology into ``audio_dir`` (offline), one MP3 per language."""
    synthesizer = synthesizer or outage_synthesizer()
    written: list[Path] = []
    for language, text in VOICE_TEXT.items():
        path = audio_dir / language / AUDIO_FLOW / f"{AUDIO_KEY}.mp3"
        synthesizer.synthesize(text, language, path)
        written.append(path)
    return written
