"""The outage apology says the shipped flow's own error prompt, and ships as audio in each language."""

from __future__ import annotations

from pathlib import Path

from app.audio.library import AudioLibrary
from app.flows.loader import load_flows
from app.flows.model import FlowDefinition
from app.settings import Settings
from app.webhooks.outage import AUDIO_FLOW, AUDIO_KEY, SMS_TEXT, VOICE_TEXT, write_outage_audio
from tests.conftest import ROOT

SHIPPED_AUDIO = ROOT / "audio"


def shipped_flow() -> FlowDefinition:
    """The flow callers reach by default, loaded from the flows folder as the app loads it."""
    fields = Settings.model_fields
    flows_dir, default = fields["flows_dir"].default, fields["default_flow"].default
    return load_flows(ROOT / flows_dir)[default]


class RecordingSynthesizer:
    """Writes each text it is given into its MP3 path, so a test can read back what would be spoken."""

    id = "recording"

    def __init__(self) -> None:
        self.spoken: dict[str, str] = {}

    def voice_for(self, language: str) -> str:
        """Any language: no voice is needed to record text."""
        return language

    def synthesize(self, text: str, language: str, out_path: Path) -> None:
        """Keep the text as spoken, and leave a non-empty file where the MP3 goes."""
        self.spoken[language] = text
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(text, encoding="utf-8")


def test_the_voice_apology_is_the_flows_error_prompt_word_for_word() -> None:
    """Every language of the flow, and no other, says exactly the flow's `system.error` prompt."""
    flow = shipped_flow()
    said_by_flow = {language: flow.system["error"][language] for language in flow.languages}
    assert said_by_flow == VOICE_TEXT


def test_the_text_apology_has_a_part_for_each_flow_language() -> None:
    """One part per flow language, so a new language is not forgotten (the words differ: see below)."""
    # Not the voice words: GSM-7 has no accents (one would triple the cost), and a texter writes again
    # rather than calls back, so the text says "escriba de nuevo" where the flow's prompt says "llame".
    assert len(SMS_TEXT.split(" / ")) == len(shipped_flow().languages)


def test_the_shipped_audio_exists_for_every_apology_language_and_is_served() -> None:
    """Each language's file is in the repository, non-empty, and found where the apology looks for it."""
    library = AudioLibrary(SHIPPED_AUDIO, ROOT / "no-generated-audio", check_interval=3600)
    for language in VOICE_TEXT:
        path = SHIPPED_AUDIO / language / AUDIO_FLOW / f"{AUDIO_KEY}.mp3"
        assert path.is_file(), path
        assert path.stat().st_size > 0, path
        found = library.lookup(language, AUDIO_FLOW, AUDIO_KEY)
        assert found is not None, language
        assert found.url_path.startswith(f"/audio/{language}/{AUDIO_FLOW}/{AUDIO_KEY}.mp3")


def test_the_audio_is_built_from_the_apology_words_into_the_shipped_paths(tmp_path: Path) -> None:
    """`write_outage_audio` speaks exactly VOICE_TEXT per language, into the paths the repository ships."""
    # No manifest records what text made the shipped files (a recording may replace them), so the words
    # reach the files through this build alone.
    synthesizer = RecordingSynthesizer()
    written = write_outage_audio(tmp_path, synthesizer)
    assert synthesizer.spoken == VOICE_TEXT
    shipped = {path.relative_to(SHIPPED_AUDIO) for path in SHIPPED_AUDIO.glob(f"*/{AUDIO_FLOW}/*.mp3")}
    assert {path.relative_to(tmp_path) for path in written} == shipped
