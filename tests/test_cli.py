"""`rimay migrate` and `rimay call`: the terminal phone drives the real signed webhooks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.settings import get_settings
from tests.conftest import ROOT


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data dir, configured through the environment as an operator would."""
    monkeypatch.setenv("RIMAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RIMAY_FLOWS_DIR", str(ROOT / "voice_flows"))
    monkeypatch.setenv("RIMAY_AUDIO_DIR", str(ROOT / "audio"))
    monkeypatch.delenv("RIMAY_DATABASE_URL", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


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
