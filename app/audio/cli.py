"""`rimay audio ...`: build draft audio and report which prompts still lack a recording."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from app.audio.build import CoverageRow, build_audio, coverage
from app.audio.errors import AudioError
from app.audio.library import AudioLibrary
from app.audio.synth import EspeakSynthesizer
from app.flows.model import FlowDefinition
from app.settings import get_settings

audio_app = typer.Typer(
    help="Prompt audio: generate offline drafts and report recorded / generated / missing per language.",
    no_args_is_help=True,
)


@audio_app.command("build")
def build_command() -> None:
    """Generate espeak-ng drafts for prompts without a recording; exit 1 if any failed."""
    settings = get_settings()
    flows = _load_flows(settings.flows_dir)
    library = AudioLibrary(settings.audio_dir, settings.generated_audio_dir)
    try:
        report = build_audio(flows.values(), library, EspeakSynthesizer())
    except AudioError as error:
        typer.echo(f"audio: {error}", err=True)
        raise typer.Exit(1) from error
    for failure in report.failed:
        typer.echo(f"failed {failure.prompt}: {failure.error}", err=True)
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@audio_app.command("report")
def report_command() -> None:
    """Print every prompt x language with its audio source; exit 1 if any is missing."""
    settings = get_settings()
    flows = _load_flows(settings.flows_dir)
    rows = coverage(flows.values(), AudioLibrary(settings.audio_dir, settings.generated_audio_dir))
    typer.echo(format_coverage(rows))
    if any(row.source == "missing" for row in rows):
        raise typer.Exit(1)


def format_coverage(rows: list[CoverageRow]) -> str:
    """The coverage table with a summary line."""
    names = [f"{row.flow_id}/{row.prompt_key}" for row in rows]
    width = max([len("prompt"), *map(len, names)])
    lines = [f"{'prompt':<{width}}  lang  source"]
    for name, row in zip(names, rows, strict=True):
        source = f"{row.source} (stale)" if row.stale else row.source
        lines.append(f"{name:<{width}}  {row.language:<4}  {source}")
    counts = Counter(row.source for row in rows)
    stale = sum(row.stale for row in rows)
    lines.append(
        f"coverage: {counts['recorded']} recorded, {counts['generated']} generated ({stale} stale), "
        f"{counts['missing']} missing"
    )
    return "\n".join(lines)


def _load_flows(directory: Path) -> dict[str, FlowDefinition]:
    # Imported at call time so tests can swap the loader.
    from app.flows.loader import FlowLoadError, load_flows

    try:
        return load_flows(directory)
    except FlowLoadError as error:
        for problem in error.problems:
            typer.echo(problem, err=True)
        typer.echo(f"audio: flows in {directory} are invalid; fix them first (rimay flows lint)", err=True)
        raise typer.Exit(1) from error
