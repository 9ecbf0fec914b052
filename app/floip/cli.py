"""`rimay export floip FLOW_ID OUT_DIR`: a survey's Flow Results package as files on disk."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from app.db.engine import make_async_engine, make_sessionmaker
from app.floip.descriptor import data_file_name, descriptor, file_resource
from app.floip.errors import SurveyNotFound
from app.floip.keys import FloipKeys
from app.floip.responses import Row
from app.floip.service import FloipService
from app.floip.surveys import Package, find_package
from app.flows.loader import FlowLoadError, load_flows
from app.settings import ConfigurationError, Settings, get_settings

export_app = typer.Typer(help="Export results for partners and archives.", no_args_is_help=True)
DESCRIPTOR_FILE = "datapackage.json"


@export_app.command("floip")
def floip_command(
    flow_id: Annotated[str, typer.Argument(help="The flow holding the survey, e.g. hotline.")],
    out_dir: Annotated[Path, typer.Argument(help="Folder to write datapackage.json and the rows into.")],
    survey: Annotated[
        str | None, typer.Option(help="The survey (consent node's `survey`); needed if the flow has several.")
    ] = None,
) -> None:
    """Write a survey's Flow Results package: datapackage.json and its responses file."""
    settings = get_settings()
    try:
        flows = load_flows(settings.flows_dir)
        package = find_package(flows, FloipKeys(settings.master_secret), flow_id, survey)
    except FlowLoadError as error:
        for line in error.problems:
            typer.echo(line, err=True)
        raise typer.Exit(1) from error
    except (SurveyNotFound, ConfigurationError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    document, rows = asyncio.run(_read(settings, package))
    paths = write_package(out_dir, document, rows, data_file_name(package))
    typer.echo(f"{len(rows)} response(s) of {package.name} (package {package.id}):")
    for path in paths:
        typer.echo(f"  {path}")


def write_package(out_dir: Path, document: dict[str, Any], rows: list[Row], data_file: str) -> list[Path]:
    """Write the descriptor and the rows (one row a line, so large exports stay diffable)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    descriptor_path, data_path = out_dir / DESCRIPTOR_FILE, out_dir / data_file
    descriptor_path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    lines = ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows)
    data_path.write_text(f"[\n{lines}\n]\n" if rows else "[]\n", encoding="utf-8")
    return [descriptor_path, data_path]


async def _read(settings: Settings, package: Package) -> tuple[dict[str, Any], list[Row]]:
    engine = make_async_engine(settings.sqlalchemy_url)
    try:
        async with make_sessionmaker(engine)() as db:
            service = FloipService(db, {package.flow.id: package.flow}, FloipKeys(settings.master_secret))
            version = await service.version(package)
            await db.commit()  # published questions stay in the package, even once the flow drops them
            rows = await service.all_rows(package, version)
            return descriptor(package, version, file_resource(package)), rows
    finally:
        await engine.dispose()
