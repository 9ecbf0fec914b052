"""Voice answers from the browser: any audio ffmpeg can read becomes a small mono MP3 Twilio can play."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from pathlib import Path

from app.cases.errors import InvalidAnswer
from app.recordings.storage import write_private

ANSWER_MEDIA_TYPE = "audio/mpeg"
TRANSCODE_TIMEOUT = 60.0
MIN_SECONDS = 0.5
"""Shorter than this is an accidental click on "stop", not an answer."""


async def transcode(data: bytes, *, ffmpeg: str = "ffmpeg", time_limit: float = TRANSCODE_TIMEOUT) -> bytes:
    """MediaRecorder's WebM/Opus, WAV, OGG or MP3 in; mono 22 kHz MP3 out. Anything else is refused."""
    if not data:
        raise InvalidAnswer("the voice answer is empty")
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", "pipe:0", "-vn"]
    command += ["-t", "600", "-ac", "1", "-ar", "22050", "-codec:a", "libmp3lame", "-b:a", "48k"]
    command += ["-f", "mp3", "pipe:1"]
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as error:
        raise RuntimeError(f"{ffmpeg} is not installed; voice answers need it") from error
    try:
        out, err = await asyncio.wait_for(process.communicate(data), time_limit)
    except TimeoutError as error:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise InvalidAnswer("the voice answer could not be converted in time") from error
    # ffmpeg writes a header-only file for an input with no audio stream, so check the length too.
    if process.returncode != 0 or len(out) < MIN_SECONDS * 48_000 / 8:
        detail = err.decode(errors="replace").strip().splitlines()
        reason = detail[-1] if detail else "no audio in it"
        raise InvalidAnswer(f"the file is not audio that can be played ({reason[:120]})")
    return out


def new_audio_id() -> str:
    """A random file id: it says nothing about the case or the caller."""
    return secrets.token_hex(16)


def answer_path(data_dir: Path, audio_id: str) -> Path:
    """Where a voice answer lives; the id is hex, so it cannot leave the folder."""
    if not audio_id.isalnum():
        raise ValueError("malformed audio id")
    return data_dir / "answers" / f"{audio_id}.mp3"


def store_answer(data_dir: Path, audio_id: str, mp3: bytes) -> Path:
    """Write the answer privately (0600) and atomically."""
    path = answer_path(data_dir, audio_id)
    write_private(path, mp3)
    return path
