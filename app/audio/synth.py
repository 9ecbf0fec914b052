"""Speech synthesizers that turn a prompt's text into a phone-friendly MP3 draft."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from app.audio.errors import AudioToolMissing, SynthesisError, UnknownVoiceError

ESPEAK_VOICES: Mapping[str, str] = {"es": "es-419", "qu": "qu"}
"""Latin American Spanish is closer to Peruvian Spanish than the default Castilian voice."""

_ALSO_SPEAKS = re.compile(r"\(([^\s()]+) \d+\)")


class Synthesizer(Protocol):
    """Anything that can write an MP3 of a text in a language."""

    id: str
    """Names the engine and every setting that shapes its output; part of each draft's fingerprint."""

    def voice_for(self, language: str) -> str:
        """Return the voice used for a language, or raise `UnknownVoiceError`."""
        ...

    def synthesize(self, text: str, language: str, out_path: Path) -> None:
        """Write the text spoken in the language to ``out_path`` as MP3, atomically."""
        ...


class EspeakSynthesizer:
    """Offline drafts: espeak-ng speaks to WAV, lame encodes a small mono MP3."""

    def __init__(
        self,
        *,
        voices: Mapping[str, str] = ESPEAK_VOICES,
        espeak: str = "espeak-ng",
        lame: str = "lame",
        rate: int = 145,
        bitrate_kbps: int = 40,
        sample_rate_khz: str = "22.05",
        timeout: float = 120.0,
    ) -> None:
        self.voices = dict(voices)
        self.espeak = espeak
        self.lame = lame
        self.rate = rate
        self.bitrate_kbps = bitrate_kbps
        self.sample_rate_khz = sample_rate_khz
        self.timeout = timeout
        self._installed_voices: frozenset[str] | None = None
        # A different rate or encoding must make every draft stale, so they belong in the id.
        self.id = f"espeak-ng/s{rate}/mp3-{bitrate_kbps}k-{sample_rate_khz}khz"

    def voice_for(self, language: str) -> str:
        """Return the espeak-ng voice for a language tag, falling back to its primary subtag."""
        voice = self.voices.get(language) or self.voices.get(language.split("-", 1)[0])
        if voice is None:
            raise UnknownVoiceError("espeak-ng", language)
        return voice

    def synthesize(self, text: str, language: str, out_path: Path) -> None:
        """Speak the text with espeak-ng, encode it with lame, then move it into place."""
        voice = self.voice_for(language)
        if voice.split("+", 1)[0] not in self.installed_voices():
            # espeak-ng silently falls back to its default (English) voice for a name it does not know.
            raise UnknownVoiceError("espeak-ng", language, voice)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        # Work next to the target so the final rename stays on one file system; the dot hides the
        # work directory from the audio index.
        with tempfile.TemporaryDirectory(prefix=".synth-", dir=out_path.parent) as work:
            wav, mp3 = Path(work) / "speech.wav", Path(work) / "speech.mp3"
            espeak = [self.espeak, "-v", voice, "-s", str(self.rate), "-b", "1", "-w", str(wav), "--stdin"]
            # Text goes in on stdin, so a prompt starting with "-" is never read as an option.
            self._run(espeak, stdin=text.encode())
            self._run([self.lame, *self._lame_options(), str(wav), str(mp3)])
            os.replace(mp3, out_path)

    def installed_voices(self) -> frozenset[str]:
        """Every name ``espeak-ng -v`` accepts here: languages, voice files and their aliases."""
        if self._installed_voices is None:
            listing = self._run([self.espeak, "--voices"]).decode(errors="replace")
            names: set[str] = set()
            for line in listing.splitlines()[1:]:
                # Columns: priority, language, age/gender, voice name, file, then "(alias priority)"s.
                columns = line.split()
                if len(columns) >= 5:
                    names.update({columns[1], columns[4], columns[4].rsplit("/", 1)[-1]})
                    names.update(_ALSO_SPEAKS.findall(line))
            self._installed_voices = frozenset(names)
        return self._installed_voices

    def _lame_options(self) -> list[str]:
        # Mono constant bitrate: Twilio fetches and transcodes to 8 kHz mu-law, so more is wasted.
        bitrate = str(self.bitrate_kbps)
        return ["--quiet", "-m", "m", "--resample", self.sample_rate_khz, "--cbr", "-b", bitrate]

    def _run(self, command: list[str], stdin: bytes | None = None) -> bytes:
        try:
            # Fixed argument list, no shell: the prompt text only ever reaches espeak-ng on stdin.
            done = subprocess.run(  # noqa: S603
                command, input=stdin, check=True, capture_output=True, timeout=self.timeout
            )
        except FileNotFoundError as error:
            raise AudioToolMissing(command[0]) from error
        except subprocess.CalledProcessError as error:
            detail = error.stderr.decode(errors="replace").strip() or "no error output"
            raise SynthesisError(f"{command[0]} exited with {error.returncode}: {detail}") from error
        except subprocess.TimeoutExpired as error:
            raise SynthesisError(f"{command[0]} took longer than {self.timeout:g}s") from error
        return done.stdout
