"""`rimay migrate` and `rimay call`: the terminal phone drives the real signed webhooks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.flows.model import FlowDefinition
from app.settings import get_settings
from tests.conftest import AUTH_TOKEN, ROOT
from tests.server import running_service


@pytest.fixture
def environment(tmp_path: Path, audio_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data dir with every prompt's audio built, configured through the environment."""
    # As after ./scripts/serve: Quechua is only ever <Play>ed, so the phone needs audio to show it.
    (tmp_path / "audio").symlink_to(audio_data_dir / "audio", target_is_directory=True)
    monkeypatch.setenv("RIMAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RIMAY_FLOWS_DIR", str(ROOT / "voice_flows"))
    monkeypatch.setenv("RIMAY_AUDIO_DIR", str(ROOT / "audio"))
    monkeypatch.delenv("RIMAY_DATABASE_URL", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.mark.audio
def test_call_walks_the_hotline_in_process(environment: Path) -> None:
    """Each prompt's text is printed, keys are sent signed, and the call is stored."""
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    result = runner.invoke(app, ["call", "--keys", "2,1,1,2,0,9"])
    assert result.exit_code == 0, result.output
    assert "Para español, marque 1." in result.output
    assert "Runasimipaq" in result.output
    assert "keys> 2" in result.output
    assert "+51900000001" not in result.output
    database = (environment / "rimay.sqlite3").read_bytes()
    assert b"900000001" not in database


@pytest.mark.audio
def test_call_over_http_walks_language_library_and_a_message(
    environment: Path, audio_data_dir: Path, flows: dict[str, FlowDefinition], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rimay call --url` phones a real server over HTTP with typed keys: Quechua, library, a message."""
    # Quechua: its prompts reach the terminal only as <Play>ed audio, read back as the flow's text.
    hotline, key, language = flows["hotline"], "2", "qu"
    with running_service(environment / "service", generated_audio=audio_data_dir / "audio") as service:
        monkeypatch.setenv("RIMAY_PUBLIC_BASE_URL", service.base_url)
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["call", "--url", service.base_url], input=f"{key}\n1\n1\nh\n")
        with closing(sqlite3.connect(service.data_dir / "rimay.sqlite3")) as database:
            rows = database.execute("SELECT node FROM interactions WHERE event = 'entered' ORDER BY id")
            entered = [node for (node,) in rows]
    assert result.exit_code == 0, result.output
    heard = [
        hotline.nodes["language"].prompt[language],
        hotline.nodes["main"].prompt[language],
        hotline.nodes["library"].prompt[language],
        hotline.nodes["eia_1"].prompt[language],
        hotline.system["after_article"][language],
    ]
    positions = [result.output.find(f"🔊 {text}") for text in heard]
    assert -1 not in positions, result.output
    assert positions == sorted(positions)
    assert result.output.count("☎ keys") == 4
    assert entered[-2:] == ["library", "eia_1"], "the walk must reach the real server's database"
    assert "+51900000001" not in result.output


def test_call_reports_invalid_flows(
    environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken flow stops the phone with the linter's message."""
    broken = tmp_path / "flows"
    broken.mkdir()
    (broken / "hotline.yaml").write_text("id: hotline\n")
    monkeypatch.setenv("RIMAY_FLOWS_DIR", str(broken))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["call", "--keys", "1"])
    assert result.exit_code == 1
    assert "hotline.yaml:(flow):" in result.output


def test_migrate_on_a_fresh_data_dir(environment: Path) -> None:
    """The embedded database is created and migrated from nothing."""
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 0
    assert "up to date" in result.output
    assert (environment / "rimay.sqlite3").exists()


def test_call_reads_keys_from_the_terminal(environment: Path) -> None:
    """Interactive use: keys typed at the prompt, Enter for silence, h to hang up."""
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    result = runner.invoke(app, ["call"], input="1\n\nh\n")
    assert result.exit_code == 0, result.output
    assert "Menú principal" in result.output
    assert "No recibimos su respuesta." in result.output


def test_sms_simulator_texts_the_hotline(environment: Path) -> None:
    """`rimay sms` sends signed SMS webhooks and prints the replies, including keyword answers."""
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    result = runner.invoke(app, ["sms", "--messages", "hola|1|AYUDA|ALTO|hola"])
    assert result.exit_code == 0, result.output
    assert "1 Español" in result.output
    assert "Menú principal" in result.output
    assert "ALTO" in result.output
    assert result.output.rstrip().endswith("(no reply)")
    assert b"900000002" not in (environment / "rimay.sqlite3").read_bytes()


def test_sms_simulator_reads_the_terminal(environment: Path) -> None:
    """Interactive use: type messages, /quit to stop."""
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    result = runner.invoke(app, ["sms"], input="hola\n/quit\n")
    assert result.exit_code == 0, result.output
    assert "2 Runasimi" in result.output
