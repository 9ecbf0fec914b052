"""Real media for tests: a short tone as a WAV file, which ffmpeg and browsers can read."""

from __future__ import annotations

import io
import math
import struct
import wave


def wav(seconds: float = 1.0) -> bytes:
    """A real WAV file: a 440 Hz tone, mono, 8 kHz."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        tone = (int(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(int(8000 * seconds)))
        out.writeframes(b"".join(struct.pack("<h", sample) for sample in tone))
    return buffer.getvalue()
