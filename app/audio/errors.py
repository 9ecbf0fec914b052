"""Typed audio errors, each with a message an operator can act on."""

from __future__ import annotations

INSTALL_HINT = "apt-get install espeak-ng lame"


class AudioError(Exception):
    """Base class for audio problems."""


class AudioToolMissing(AudioError):
    """An external audio tool (espeak-ng, lame) is not installed."""

    def __init__(self, tool: str) -> None:
        super().__init__(f"{tool} is not installed or not on PATH; install it with: {INSTALL_HINT}")
        self.tool = tool


class UnknownVoiceError(AudioError):
    """The synthesizer has no voice for a language."""

    def __init__(self, synthesizer: str, language: str, voice: str | None = None) -> None:
        if voice is None:
            problem = f"{synthesizer} has no voice for language {language!r}"
        else:
            problem = f"{synthesizer} voice {voice!r} for language {language!r} is not installed"
        super().__init__(f"{problem}; record the prompts or configure an installed voice")
        self.language = language


class SynthesisError(AudioError):
    """An audio tool ran but failed; the message carries its error output."""


class AudioDirsOverlapError(AudioError):
    """The generated dir overlaps the recorded dir, so a build could overwrite recordings."""
