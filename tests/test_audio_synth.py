"""The espeak-ng + lame synthesizer makes small, valid MP3s and fails with clear, typed errors."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import pytest

from app.audio.errors import AudioToolMissing, SynthesisError, UnknownVoiceError
from app.audio.synth import EspeakSynthesizer, Synthesizer

TEXTS = {
    "es": "Para escuchar sus derechos, marque uno. Para hablar con una persona, marque dos.",
    "qu": "Runasimipaq, iskay yupayta ñit'iy. Kutipayanapaq, ch'usaq yupayta ñit'iy.",
}


def is_mp3(data: bytes) -> bool:
    # Either an ID3 tag or an MPEG audio frame sync (11 set bits) at the start.
    return data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


def decoded_seconds(mp3: Path, tmp_path: Path) -> float:
    wav = tmp_path / "decoded.wav"
    subprocess.run(["lame", "--quiet", "--decode", str(mp3), str(wav)], check=True)
    with wave.open(str(wav), "rb") as audio:
        assert audio.getnchannels() == 1
        return audio.getnframes() / audio.getframerate()


@pytest.mark.audio
@pytest.mark.parametrize("language", ["es", "qu"])
def test_writes_a_plausible_mp3(language: str, tmp_path: Path) -> None:
    synth: Synthesizer = EspeakSynthesizer()
    out = tmp_path / language / "hotline" / "main.mp3"

    synth.synthesize(TEXTS[language], language, out)

    data = out.read_bytes()
    assert is_mp3(data)
    seconds = decoded_seconds(out, tmp_path)
    # About a dozen words at a calm pace: several seconds, not a click and not a minute.
    assert 3 < seconds < 20
    # 40 kbps CBR: roughly 5 kB per second of speech.
    assert 3_000 * seconds < len(data) < 8_000 * seconds
    assert sorted(path.name for path in out.parent.iterdir()) == ["main.mp3"]


@pytest.mark.audio
def test_replaces_an_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "main.mp3"
    out.write_bytes(b"old")

    EspeakSynthesizer().synthesize("-Hola.", "es", out)

    assert is_mp3(out.read_bytes())


def test_voices_for_languages() -> None:
    synth = EspeakSynthesizer()

    assert synth.voice_for("es") == "es-419"
    assert synth.voice_for("es-PE") == "es-419"
    assert synth.voice_for("qu") == "qu"
    assert EspeakSynthesizer(voices={"qvw": "qu"}).voice_for("qvw") == "qu"


def test_unknown_language_is_a_typed_error(tmp_path: Path) -> None:
    out = tmp_path / "main.mp3"

    with pytest.raises(UnknownVoiceError, match="qvw"):
        EspeakSynthesizer().synthesize("Allinllachu", "qvw", out)

    assert not out.exists()


def test_settings_that_shape_the_sound_are_part_of_the_id() -> None:
    assert EspeakSynthesizer().id != EspeakSynthesizer(rate=120).id
    assert EspeakSynthesizer().id != EspeakSynthesizer(bitrate_kbps=32).id


# With lame missing, espeak-ng still runs first, so that case needs the audio tools installed.
@pytest.mark.parametrize("tool", ["espeak", pytest.param("lame", marks=pytest.mark.audio)])
def test_missing_tool_says_what_to_install(tool: str, tmp_path: Path) -> None:
    missing = "rimay-no-such-tool"
    synth = EspeakSynthesizer(espeak=missing) if tool == "espeak" else EspeakSynthesizer(lame=missing)
    out = tmp_path / "main.mp3"

    with pytest.raises(AudioToolMissing, match=r"rimay-no-such-tool.*apt-get install espeak-ng lame"):
        synth.synthesize("Hola", "es", out)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.audio
def test_a_failing_tool_is_a_typed_error(tmp_path: Path) -> None:
    # `false` takes any arguments and exits 1, like an encoder that chokes.
    synth = EspeakSynthesizer(lame="false")

    with pytest.raises(SynthesisError, match="false exited with 1"):
        synth.synthesize("Hola", "es", tmp_path / "main.mp3")

    assert list(tmp_path.iterdir()) == []


@pytest.mark.audio
def test_a_voice_espeak_does_not_have_is_a_typed_error(tmp_path: Path) -> None:
    # espeak-ng itself would speak such text with its English voice and exit 0.
    synth = EspeakSynthesizer(voices={"es": "no-such-voice"})

    with pytest.raises(UnknownVoiceError, match="'no-such-voice' for language 'es' is not installed"):
        synth.synthesize("Hola", "es", tmp_path / "main.mp3")

    assert list(tmp_path.iterdir()) == []


@pytest.mark.audio
def test_installed_voices_include_the_defaults_and_their_aliases() -> None:
    voices = EspeakSynthesizer().installed_voices()

    assert {"es-419", "qu", "roa/es-419", "es-mx"} <= voices
