"""`rimay flows lint`: notes on stdout, one `file:node: message` line per problem on stderr, exit 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app

ROOT = Path(__file__).resolve().parents[1]
QUECHUA_NOTE = "note: Quechua (qu) text is a draft awaiting review by native speakers"


@pytest.fixture
def runner() -> CliRunner:
    """A runner; this Click version always keeps stderr apart in `result.stderr`."""
    return CliRunner()


@pytest.fixture
def flows_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped flows to break; the working directory is its parent."""
    monkeypatch.chdir(tmp_path)
    return Path(shutil.copytree(ROOT / "voice_flows", tmp_path / "flows"))


def replace_once(path: Path, old: str, new: str) -> None:
    """Edit a flow file the way an editor would, checking the edit applies exactly once."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_lint_shipped_flows(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped flows pass, with the Quechua draft note on stdout."""
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["flows", "lint", "voice_flows"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"voice_flows/hotline.yaml:(flow): {QUECHUA_NOTE}", "flows ok"]
    assert result.stderr == ""


def test_lint_broken_flows(runner: CliRunner, flows_copy: Path) -> None:
    """Each problem is one line on stderr, in the main and the included file, and the exit code is 1."""
    replace_once(flows_copy / "hotline.yaml", "    next: language\n", "    next: lenguage\n")
    replace_once(flows_copy / "parts" / "news.yaml", "    next: news_3\n", "    next: news_4\n")
    result = runner.invoke(app, ["flows", "lint", "flows"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "flows/hotline.yaml:greeting: leads to unknown node 'lenguage'",
        "flows/parts/news.yaml:news_2: leads to unknown node 'news_4'",
        "flows/parts/news.yaml:news_3: is unreachable from start",
        "3 problem(s)",
    ]
    assert "flows ok" not in result.stdout


def test_lint_broken_flows_still_prints_notes(runner: CliRunner, flows_copy: Path) -> None:
    """A flow with a semantic problem still gets its review note on stdout."""
    replace_once(flows_copy / "hotline.yaml", "    next: language\n", "    next: lenguage\n")
    result = runner.invoke(app, ["flows", "lint", "flows"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"flows/hotline.yaml:(flow): {QUECHUA_NOTE}"]


def test_lint_empty_folder(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder without flow files fails, saying so."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["flows", "lint", "empty"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["empty:(flow): no flow files (*.yaml) found", "1 problem(s)"]
    assert result.stdout == ""
