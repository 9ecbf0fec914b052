"""Generate draft audio for every prompt that has no recording, and report coverage."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from app.audio.errors import AudioDirsOverlapError, AudioError, AudioToolMissing
from app.audio.library import AudioLibrary
from app.audio.manifest import Manifest, ManifestEntry, fingerprint, text_digest
from app.audio.synth import Synthesizer
from app.flows.model import FlowDefinition

CoverageSource = Literal["recorded", "generated", "missing"]


@dataclass(frozen=True)
class PromptAudio:
    """One prompt in one language: the unit that has (or lacks) an audio file."""

    language: str
    flow_id: str
    key: str
    text: str | None

    def __str__(self) -> str:
        return f"{self.language}/{self.flow_id}/{self.key}"


@dataclass(frozen=True)
class BuildFailure:
    """A prompt whose draft could not be generated, and why."""

    prompt: PromptAudio
    error: str


@dataclass
class BuildReport:
    """What a build did to each prompt in each language."""

    generated: list[PromptAudio] = field(default_factory=list)
    up_to_date: list[PromptAudio] = field(default_factory=list)
    recorded: list[PromptAudio] = field(default_factory=list)
    failed: list[BuildFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every prompt has current audio."""
        return not self.failed

    def summary(self) -> str:
        """One line for the terminal."""
        return (
            f"audio: {len(self.generated)} generated, {len(self.up_to_date)} up to date, "
            f"{len(self.recorded)} recorded, {len(self.failed)} failed"
        )


@dataclass(frozen=True)
class CoverageRow:
    """Where the audio of one prompt in one language comes from."""

    flow_id: str
    prompt_key: str
    language: str
    source: CoverageSource
    stale: bool = False
    """A generated draft made from text that has since changed."""


def build_audio(
    flows: Iterable[FlowDefinition], library: AudioLibrary, synthesizer: Synthesizer
) -> BuildReport:
    """Generate missing and stale drafts; leave recordings and current drafts alone."""
    _refuse_overlap(library.recorded_dir, library.generated_dir)
    library.refresh()
    manifest = Manifest.load(library.generated_dir)
    report = BuildReport()
    try:
        for prompt in iter_prompts(flows):
            _build_one(prompt, library, synthesizer, manifest, report)
    finally:
        # Saved even when a missing tool aborts the build, so finished drafts are not redone.
        if report.generated:
            manifest.save()
        library.refresh()
    return report


def coverage(flows: Iterable[FlowDefinition], library: AudioLibrary) -> list[CoverageRow]:
    """List every prompt in every language with the source of its audio."""
    manifest = Manifest.load(library.generated_dir)
    rows: list[CoverageRow] = []
    for prompt in iter_prompts(flows):
        found = library.lookup(prompt.language, prompt.flow_id, prompt.key)
        source: CoverageSource = "missing" if found is None else found.source
        stale = False
        if source == "generated" and prompt.text is not None:
            entry = manifest.get(prompt.language, prompt.flow_id, prompt.key)
            stale = entry is None or entry.text_sha256 != text_digest(prompt.text)
        rows.append(CoverageRow(prompt.flow_id, prompt.key, prompt.language, source, stale))
    return rows


def iter_prompts(flows: Iterable[FlowDefinition]) -> Iterator[PromptAudio]:
    """Yield every prompt of every flow in each of the flow's languages."""
    for flow in flows:
        for key, text in flow.prompts():
            for language in flow.languages:
                yield PromptAudio(language, flow.id, key, text.get(language))


def _build_one(
    prompt: PromptAudio,
    library: AudioLibrary,
    synthesizer: Synthesizer,
    manifest: Manifest,
    report: BuildReport,
) -> None:
    found = library.lookup(prompt.language, prompt.flow_id, prompt.key)
    if found is not None and found.source == "recorded":
        report.recorded.append(prompt)
        return
    target = library.generated_path(prompt.language, prompt.flow_id, prompt.key)
    try:
        entry = _entry_for(prompt, synthesizer)
        made_with = manifest.get(prompt.language, prompt.flow_id, prompt.key)
        fresh = made_with is not None and made_with.fingerprint == entry.fingerprint
        if fresh and found is not None and found.path == target:
            report.up_to_date.append(prompt)
            return
        synthesizer.synthesize(_text_of(prompt), prompt.language, target)
    except AudioToolMissing:
        # Every other prompt would fail the same way; one clear message beats a hundred.
        raise
    except Exception as error:
        # One bad prompt, whatever the synthesizer raised, must not stop the rest of the build.
        message = str(error) if isinstance(error, AudioError) else f"{type(error).__name__}: {error}"
        report.failed.append(BuildFailure(prompt, message))
        return
    manifest.put(prompt.language, prompt.flow_id, prompt.key, entry)
    report.generated.append(prompt)


def _entry_for(prompt: PromptAudio, synthesizer: Synthesizer) -> ManifestEntry:
    # The voice first: for a language with no voice, that is the cause worth reporting.
    voice = synthesizer.voice_for(prompt.language)
    text = _text_of(prompt)
    return ManifestEntry(
        fingerprint=fingerprint(synthesizer.id, voice, text),
        text_sha256=text_digest(text),
        synthesizer=synthesizer.id,
        voice=voice,
    )


def _text_of(prompt: PromptAudio) -> str:
    if prompt.text is None or not prompt.text.strip():
        raise AudioError(f"no {prompt.language} text for prompt {prompt.key!r} in flow {prompt.flow_id!r}")
    return prompt.text


def _refuse_overlap(recorded_dir: Path, generated_dir: Path) -> None:
    recorded, generated = recorded_dir.resolve(), generated_dir.resolve()
    if generated.is_relative_to(recorded) or recorded.is_relative_to(generated):
        raise AudioDirsOverlapError(
            f"generated audio dir {generated} overlaps the recorded audio dir {recorded}; "
            "set RIMAY_DATA_DIR and RIMAY_AUDIO_DIR so they are apart, or recordings could be overwritten"
        )
