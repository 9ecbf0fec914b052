"""Building draft audio: missing and stale drafts are made, recordings are never touched."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from app.audio.build import PromptAudio, build_audio, coverage
from app.audio.errors import AudioDirsOverlapError, AudioToolMissing, SynthesisError, UnknownVoiceError
from app.audio.library import AudioLibrary
from app.audio.manifest import MANIFEST_NAME
from app.flows.model import FlowDefinition

WELCOME = {"es": "Bienvenida a la línea Rimay.", "qu": "Rimay línea nisqaman allinlla hamuy."}
GOODBYE = {"es": "Hasta pronto.", "qu": "Tupananchiskama."}


def make_flow(
    welcome: dict[str, str] = WELCOME, languages: tuple[str, ...] = ("es", "qu"), flow_id: str = "hotline"
) -> FlowDefinition:
    return FlowDefinition.model_validate(
        {
            "id": flow_id,
            "languages": list(languages),
            "start": "welcome",
            "main": "welcome",
            "system": {"goodbye": GOODBYE},
            "nodes": {
                "welcome": {"type": "message", "prompt": welcome, "next": "bye"},
                "bye": {"type": "end", "prompt": GOODBYE},
            },
        }
    )


class FakeSynthesizer:
    """Writes the text as bytes and remembers every call."""

    id = "fake/1"

    def __init__(self, fail_on: frozenset[str] = frozenset(), missing_tool_after: int | None = None) -> None:
        self.calls: list[tuple[str, str, Path]] = []
        self.fail_on = fail_on
        self.missing_tool_after = missing_tool_after

    def voice_for(self, language: str) -> str:
        if language not in {"es", "qu"}:
            raise UnknownVoiceError(self.id, language)
        return f"voice-{language}"

    def synthesize(self, text: str, language: str, out_path: Path) -> None:
        if self.missing_tool_after is not None and len(self.calls) >= self.missing_tool_after:
            raise AudioToolMissing("espeak-ng")
        self.calls.append((text, language, out_path))
        if text in self.fail_on:
            raise SynthesisError("espeak-ng exited with 1: boom")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_bytes(f"{language}:{text}".encode())


def names(prompts: Iterable[PromptAudio]) -> list[str]:
    return sorted(map(str, prompts))


ALL = sorted(f"{lang}/hotline/{key}" for lang in ("es", "qu") for key in ("welcome", "bye", "_goodbye"))


def test_generates_every_missing_prompt(library: AudioLibrary, generated: Path) -> None:
    synth = FakeSynthesizer()

    report = build_audio([make_flow()], library, synth)

    assert names(report.generated) == ALL
    assert report.ok
    assert report.summary() == "audio: 6 generated, 0 up to date, 0 recorded, 0 failed"
    assert (generated / "qu/hotline/_goodbye.mp3").read_bytes() == b"qu:Tupananchiskama."
    found = library.lookup("es", "hotline", "welcome")
    assert found is not None
    assert found.source == "generated"
    manifest = json.loads((generated / MANIFEST_NAME).read_text())
    assert sorted(manifest["files"]) == sorted(f"{name}.mp3" for name in ALL)
    assert manifest["files"]["qu/hotline/bye.mp3"]["voice"] == "voice-qu"


def test_skips_drafts_that_are_current(library: AudioLibrary) -> None:
    build_audio([make_flow()], library, FakeSynthesizer())
    synth = FakeSynthesizer()

    report = build_audio([make_flow()], library, synth)

    assert synth.calls == []
    assert names(report.up_to_date) == ALL
    assert report.summary() == "audio: 0 generated, 6 up to date, 0 recorded, 0 failed"


def test_regenerates_a_stale_draft_after_a_text_change(library: AudioLibrary, generated: Path) -> None:
    build_audio([make_flow()], library, FakeSynthesizer())
    synth = FakeSynthesizer()
    changed = {**WELCOME, "es": "Bienvenido a Rimay."}

    report = build_audio([make_flow(welcome=changed)], library, synth)

    assert names(report.generated) == ["es/hotline/welcome"]
    assert [call[:2] for call in synth.calls] == [("Bienvenido a Rimay.", "es")]
    assert (generated / "es/hotline/welcome.mp3").read_bytes() == b"es:Bienvenido a Rimay."
    assert len(report.up_to_date) == 5


def test_regenerates_when_the_synthesizer_changes(library: AudioLibrary) -> None:
    build_audio([make_flow()], library, FakeSynthesizer())
    synth = FakeSynthesizer()
    synth.id = "fake/2"

    report = build_audio([make_flow()], library, synth)

    assert names(report.generated) == ALL


def test_regenerates_a_deleted_draft(library: AudioLibrary, generated: Path) -> None:
    build_audio([make_flow()], library, FakeSynthesizer())
    (generated / "qu/hotline/bye.mp3").unlink()

    report = build_audio([make_flow()], library, FakeSynthesizer())

    assert names(report.generated) == ["qu/hotline/bye"]


def test_regenerates_drafts_the_manifest_does_not_vouch_for(library: AudioLibrary, generated: Path) -> None:
    build_audio([make_flow()], library, FakeSynthesizer())
    (generated / MANIFEST_NAME).write_text("{not json")

    report = build_audio([make_flow()], library, FakeSynthesizer())

    assert names(report.generated) == ALL


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_never_overwrites_or_deletes_a_recording(
    library: AudioLibrary, recorded: Path, generated: Path
) -> None:
    voice = recorded / "qu/hotline/welcome.wav"
    voice.parent.mkdir(parents=True)
    voice.write_bytes(b"RIFF a native speaker")
    os.utime(voice, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    (recorded / "es/hotline").mkdir(parents=True)
    (recorded / "es/hotline/_goodbye.mp3").write_bytes(b"ID3 recorded goodbye")
    before = tree(recorded)
    synth = FakeSynthesizer()

    report = build_audio([make_flow()], library, synth)
    again = build_audio([make_flow(welcome={**WELCOME, "qu": "Musuq qillqa."})], library, synth)

    assert tree(recorded) == before
    assert voice.stat().st_mtime_ns == 1_600_000_000_000_000_000
    assert names(report.recorded) == ["es/hotline/_goodbye", "qu/hotline/welcome"]
    assert names(again.recorded) == ["es/hotline/_goodbye", "qu/hotline/welcome"]
    assert all(not path.is_relative_to(recorded) for _, _, path in synth.calls)
    assert not (generated / "qu/hotline/welcome.mp3").exists()
    found = library.lookup("qu", "hotline", "welcome")
    assert found is not None
    assert found.source == "recorded"


def test_one_failing_prompt_is_reported_and_the_rest_are_built(library: AudioLibrary) -> None:
    synth = FakeSynthesizer(fail_on=frozenset({GOODBYE["qu"]}))

    report = build_audio([make_flow()], library, synth)

    assert [str(failure.prompt) for failure in report.failed] == ["qu/hotline/bye", "qu/hotline/_goodbye"]
    assert all("boom" in failure.error for failure in report.failed)
    assert names(report.generated) == [
        "es/hotline/_goodbye",
        "es/hotline/bye",
        "es/hotline/welcome",
        "qu/hotline/welcome",
    ]
    assert not report.ok
    assert report.summary() == "audio: 4 generated, 0 up to date, 0 recorded, 2 failed"

    retry = build_audio([make_flow()], library, FakeSynthesizer())

    assert names(retry.generated) == ["qu/hotline/_goodbye", "qu/hotline/bye"]


def test_a_language_without_a_voice_fails_only_its_prompts(library: AudioLibrary) -> None:
    flow = make_flow(welcome={**WELCOME, "qvw": "Wanka"}, languages=("es", "qvw"))

    report = build_audio([flow], library, FakeSynthesizer())

    assert names(report.generated) == ["es/hotline/_goodbye", "es/hotline/bye", "es/hotline/welcome"]
    assert len(report.failed) == 3
    assert all("no voice for language 'qvw'" in failure.error for failure in report.failed)


def test_a_missing_text_is_a_failure(library: AudioLibrary) -> None:
    report = build_audio([make_flow(welcome={"es": "Hola"})], library, FakeSynthesizer())

    assert [str(failure.prompt) for failure in report.failed] == ["qu/hotline/welcome"]
    assert "no qu text" in report.failed[0].error


def test_a_missing_tool_stops_the_build_and_keeps_finished_drafts(
    library: AudioLibrary, generated: Path
) -> None:
    with pytest.raises(AudioToolMissing, match="apt-get install espeak-ng lame"):
        build_audio([make_flow()], library, FakeSynthesizer(missing_tool_after=2))

    report = build_audio([make_flow()], library, FakeSynthesizer())

    assert len(report.up_to_date) == 2
    assert len(report.generated) == 4


def test_refuses_a_generated_dir_inside_the_recorded_dir(recorded: Path) -> None:
    library = AudioLibrary(recorded, recorded / "generated")
    synth = FakeSynthesizer()

    with pytest.raises(AudioDirsOverlapError):
        build_audio([make_flow()], library, synth)

    assert synth.calls == []
    assert not recorded.exists()


def test_coverage_lists_each_prompt_and_language_with_its_source(
    library: AudioLibrary, recorded: Path
) -> None:
    voice = recorded / "qu/hotline/welcome.mp3"
    voice.parent.mkdir(parents=True)
    voice.write_bytes(b"voice")
    build_audio([make_flow()], library, FakeSynthesizer(fail_on=frozenset({GOODBYE["es"]})))

    rows = coverage([make_flow(welcome={**WELCOME, "es": "Texto nuevo."})], library)

    table = {(row.flow_id, row.prompt_key, row.language): (row.source, row.stale) for row in rows}
    assert table == {
        ("hotline", "welcome", "es"): ("generated", True),
        ("hotline", "welcome", "qu"): ("recorded", False),
        ("hotline", "bye", "es"): ("missing", False),
        ("hotline", "bye", "qu"): ("generated", False),
        ("hotline", "_goodbye", "es"): ("missing", False),
        ("hotline", "_goodbye", "qu"): ("generated", False),
    }
