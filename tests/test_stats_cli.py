"""`rimay stats` against a SQLite database filled by real texts: the figures, hidden ones, and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.settings import get_settings
from tests.conftest import ROOT

PROFILE = "hola|1|2|1|{gender}"
"""Spanish, the survey, consent, then the gender key (1 mujer, 2 hombre)."""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A migrated data dir where five women and one man answered the gender question by SMS."""
    data_dir = tmp_path_factory.mktemp("stats")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RIMAY_DATA_DIR", str(data_dir))
        patch.setenv("RIMAY_FLOWS_DIR", str(ROOT / "voice_flows"))
        patch.setenv("RIMAY_AUDIO_DIR", str(ROOT / "audio"))
        patch.setenv("RIMAY_STATS_MIN_CELL", "3")
        patch.delenv("RIMAY_DATABASE_URL", raising=False)
        patch.delenv("TWILIO_AUTH_TOKEN", raising=False)
        get_settings.cache_clear()
        runner = CliRunner()
        assert runner.invoke(app, ["migrate"]).exit_code == 0
        for number, gender in enumerate("111112"):
            sender = f"+5190000{number:04d}"
            texted = runner.invoke(
                app, ["sms", "--from", sender, "--messages", PROFILE.format(gender=gender)]
            )
            assert texted.exit_code == 0, texted.output
        yield data_dir
        get_settings.cache_clear()


def stats(*arguments: str) -> tuple[int, str]:
    """Run `rimay stats` and return its exit code and output."""
    result = CliRunner().invoke(app, ["stats", *arguments])
    return result.exit_code, result.output


def test_headline_tables_with_hidden_figures(seeded: Path) -> None:
    """Every headline table is printed; the lone man is —, never 0; no number or pseudonym appears."""
    code, output = stats("--question", "genero")
    assert code == 0, output
    assert "counts below 3 are hidden (—)" in output
    for title in (
        "Participantes por periodo y género",
        "Participantes por canal (%)",
        "Participantes por idioma (%)",
        "Personas que vuelven",
        "Casos por tema",
        "Tiempo hasta la primera respuesta",
        "Usted es:",
    ):
        assert title in output
    survey = output.split("Usted es:")[1]
    assert _row(survey, "Mujer") == ["5"]
    assert _row(survey, "Hombre") == ["—"]
    assert "900000" not in output


def test_a_chosen_range_by_week(seeded: Path) -> None:
    """--from/--to/--period pick the periods; weeks are named by their Monday."""
    code, output = stats("--from", "2025-03-03", "--to", "2025-03-20", "--period", "week")
    assert code == 0, output
    assert "2025-03-03 to 2025-03-20 by week" in output
    assert "semana del 17 mar 2025" in output
    assert "Usted es:" not in output  # survey tables only when asked for


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--from", "2025-05-02", "--to", "2025-05-01"], "--from 2025-05-02 is after --to 2025-05-01"),
        (["--from", "2025-02-30"], "'2025-02-30' is not a date (YYYY-MM-DD)"),
        (["--to", "ayer"], "'ayer' is not a date (YYYY-MM-DD)"),
        (["--from", "2020-01-01", "--to", "2025-01-01"], "at most 366 days"),
        (["--from", "2025-01-01", "--to", "2025-04-30", "--period", "day"], "60 periods"),
        (["--period", "year"], "'year' is not one of"),
        (["--question", "no_such_question"], "no survey question"),
    ],
    ids=["backwards", "no-such-day", "not-a-date", "too-many-days", "too-many-periods", "period", "question"],
)
def test_bad_input_exits_2_and_says_why(seeded: Path, arguments: list[str], message: str) -> None:
    """Usage errors: exit code 2 and a message naming the problem, no table."""
    code, output = stats(*arguments)
    assert code == 2, output
    assert message in " ".join(output.split()).replace("│", "").replace("  ", " ")
    assert "Participantes" not in output


def _row(table: str, name: str) -> list[str]:
    """The cells after a row's name, in the first table of ``table`` that has it."""
    for line in table.splitlines():
        if line.startswith(name + " "):
            return line[len(name) :].split()
    raise AssertionError(f"no row {name!r} in {table}")


def test_rebuild_recounts_the_same_figures(seeded: Path) -> None:
    """`rimay stats rebuild` empties the rollups and counts every stored session again: same tables."""
    before = stats("--question", "genero")
    result = CliRunner().invoke(app, ["stats", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "recounted 6 session(s) and 0 case(s)" in result.output
    assert stats("--question", "genero") == before
