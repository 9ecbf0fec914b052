"""`rimay audio build` and `rimay audio report` on a tiny flow with a fake synthesizer."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.audio import cli
from app.audio.errors import AudioToolMissing, SynthesisError
from app.flows.model import FlowDefinition
from app.settings import Settings

PROMPT = {"es": "Hola.", "qu": "Napaykullayki."}


def make_flow() -> FlowDefinition:
    return FlowDefinition.model_validate(
        {
            "id": "hotline",
            "languages": ["es", "qu"],
            "start": "welcome",
            "main": "welcome",
            "nodes": {"welcome": {"type": "end", "prompt": PROMPT}},
        }
    )


class FakeSynthesizer:
    """Writes the text as bytes; fails for Quechua when asked to."""

    id = "fake/1"
    fail_quechua = False
    missing_tool = False

    def voice_for(self, language: str) -> str:
        return language

    def synthesize(self, text: str, language: str, out_path: Path) -> None:
        if self.missing_tool:
            raise AudioToolMissing("espeak-ng")
        if self.fail_quechua and language == "qu":
            raise SynthesisError("lame exited with 1: boom")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_bytes(text.encode())


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = Settings(data_dir=tmp_path / "var", audio_dir=tmp_path / "audio", flows_dir=tmp_path / "flows")
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli, "_load_flows", lambda directory: {"hotline": make_flow()})
    monkeypatch.setattr(cli, "EspeakSynthesizer", FakeSynthesizer)
    monkeypatch.setattr(FakeSynthesizer, "fail_quechua", False)
    monkeypatch.setattr(FakeSynthesizer, "missing_tool", False)
    return settings


def test_build_prints_a_summary(settings: Settings) -> None:
    result = CliRunner().invoke(cli.audio_app, ["build"])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "audio: 2 generated, 0 up to date, 0 recorded, 0 failed"
    assert (settings.generated_audio_dir / "qu" / "hotline" / "welcome.mp3").read_bytes() == b"Napaykullayki."


def test_build_reports_each_failure_and_exits_1(settings: Settings) -> None:
    FakeSynthesizer.fail_quechua = True

    result = CliRunner().invoke(cli.audio_app, ["build"])

    assert result.exit_code == 1
    assert "failed qu/hotline/welcome: lame exited with 1: boom" in result.stderr
    assert "audio: 1 generated, 0 up to date, 0 recorded, 1 failed" in result.stdout


def test_build_without_tools_says_what_to_install(settings: Settings) -> None:
    FakeSynthesizer.missing_tool = True

    result = CliRunner().invoke(cli.audio_app, ["build"])

    assert result.exit_code == 1
    assert "apt-get install espeak-ng lame" in result.stderr


def test_report_lists_sources_and_exits_1_when_something_is_missing(settings: Settings) -> None:
    recording = settings.audio_dir / "es" / "hotline" / "welcome.wav"
    recording.parent.mkdir(parents=True)
    recording.write_bytes(b"voice")

    result = CliRunner().invoke(cli.audio_app, ["report"])

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "prompt           lang  source",
        "hotline/welcome  es    recorded",
        "hotline/welcome  qu    missing",
        "coverage: 1 recorded, 0 generated (0 stale), 1 missing",
    ]


def test_report_passes_once_everything_has_audio(settings: Settings) -> None:
    CliRunner().invoke(cli.audio_app, ["build"])

    result = CliRunner().invoke(cli.audio_app, ["report"])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "coverage: 0 recorded, 2 generated (0 stale), 0 missing"
