"""The `rimay` command line for operators."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import httpx
import typer

from app.apikeys.cli import apikey_app
from app.audio.cli import audio_app
from app.broadcasts.cli import broadcast_app
from app.floip.cli import export_app
from app.flows.loader import FlowLoadError, lint_flows, load_flows
from app.flows.model import FlowDefinition
from app.outbox.cli import outbox_app, purge, worker
from app.settings import ConfigurationError, get_settings
from app.simulator import HANG_UP, Call, Screen, TextPhone, TwilioSigner
from app.staff.cli import user_app
from app.stats.cli import stats_app

app = typer.Typer(
    help="Rimay: an IVR and SMS hotline for communities affected by mining.", no_args_is_help=True
)
flows_app = typer.Typer(help="Check flow files.", no_args_is_help=True)
app.add_typer(flows_app, name="flows")
app.add_typer(audio_app, name="audio")
app.add_typer(broadcast_app, name="broadcast")
app.add_typer(outbox_app, name="outbox")
app.add_typer(apikey_app, name="apikey")
app.add_typer(export_app, name="export")
app.add_typer(user_app, name="user")
app.command()(worker)
app.command()(purge)
app.add_typer(stats_app, name="stats")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (use PostgreSQL for more than one).")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Run the web service (Twilio webhooks, audio, health)."""
    import uvicorn

    settings = get_settings()
    _check_startup()
    if workers > 1:
        share_metrics()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        proxy_headers=True,
        forwarded_allow_ips="*",
        log_level=settings.log_level.lower(),
    )


def share_metrics() -> None:
    """Let every worker's `/metrics` add up all workers' figures, in a folder emptied now."""
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="rimay-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # a previous run's figures would be added to this one's
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)  # the workers inherit it


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (SQLite or PostgreSQL)."""
    from app.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.sqlalchemy_url)
    typer.echo("database schema is up to date")


@flows_app.command("lint")
def lint(
    directory: Annotated[
        Path | None, typer.Argument(help="Folder of flow files (default: RIMAY_FLOWS_DIR).")
    ] = None,
) -> None:
    """Check every flow; print each problem as file:node: message and exit 1 if any."""
    problems, notes = lint_flows(directory or get_settings().flows_dir)
    for line in problems:
        typer.echo(line, err=True)
    for line in notes:
        typer.echo(line)
    if problems:
        typer.echo(f"{len(problems)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo("flows ok")


@app.command()
def call(
    url: Annotated[
        str | None,
        typer.Option(
            help="A running service, e.g. http://127.0.0.1:8000. Default: run the app in this process."
        ),
    ] = None,
    caller: Annotated[
        str, typer.Option("--from", help="The caller's number (only its pseudonym is stored).")
    ] = "+51900000001",
    keys: Annotated[
        str | None,
        typer.Option(
            help="Scripted key presses, comma separated; '' is silence, "
            "h hangs up. Default: ask at the terminal."
        ),
    ] = None,
) -> None:
    """A terminal phone: hear each prompt as text and answer with keys, through the real signed webhooks."""
    flows = _check_startup()
    script = iter(keys.split(",")) if keys is not None else None
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(_call(url, caller, flows, script))


async def _call(
    url: str | None, caller: str, flows: dict[str, FlowDefinition], script: Iterator[str] | None
) -> None:
    settings = get_settings()
    signer = TwilioSigner(settings.auth_token, settings.public_base_url)
    async with _client(url) as client:
        phone = Call(client=client, signer=signer, flows=flows, caller=caller)
        async for screen in phone.screens(lambda s: _press(s, script)):
            for prompt in screen.prompts:
                typer.echo(f"  🔊 {prompt.text}")
            if screen.hangup:
                typer.echo("  [the hotline hung up]")


@app.command()
def sms(
    url: Annotated[
        str | None,
        typer.Option(
            help="A running service, e.g. http://127.0.0.1:8000. Default: run the app in this process."
        ),
    ] = None,
    sender: Annotated[
        str, typer.Option("--from", help="The sender's number (only its pseudonym is stored).")
    ] = "+51900000002",
    messages: Annotated[
        str | None,
        typer.Option(help="Scripted messages separated by '|'. Default: type them at the terminal."),
    ] = None,
) -> None:
    """A terminal SMS phone: text the hotline through the real signed webhook and read its replies."""
    _check_startup()
    script = iter(messages.split("|")) if messages is not None else None
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(_texts(url, sender, script))


async def _texts(url: str | None, sender: str, script: Iterator[str] | None) -> None:
    settings = get_settings()
    signer = TwilioSigner(settings.auth_token, settings.public_base_url)
    async with _client(url) as client:
        phone = TextPhone(client=client, signer=signer, sender=sender)
        while True:
            if script is not None:
                body = next(script, None)
                if body is None:
                    return
                typer.echo(f"  ✉ you> {body}")
            else:
                body = typer.prompt("  ✉ you (/quit to stop)", default="", show_default=False)
                if body.strip() == "/quit":
                    return
            replies = await phone.text(body)
            for reply in replies or ["(no reply)"]:
                typer.echo("  ✉ rimay> " + reply.replace("\n", "\n           "))


def _press(screen: Screen, script: Iterator[str] | None) -> str | None:
    if script is not None:
        pressed = next(script, HANG_UP)
        typer.echo(f"  ☎ keys> {pressed or '(no input)'}")
    else:
        pressed = typer.prompt("  ☎ keys (Enter = no input, h = hang up)", default="", show_default=False)
    return None if pressed.strip().lower() == HANG_UP else pressed.strip()


@asynccontextmanager
async def _client(url: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """A client for a running service, or for the app in this process (same code path, no server)."""
    if url is not None:
        async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=15) as client:
            yield client
        return
    from app.main import create_app

    app = create_app()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=get_settings().public_base_url) as client:
            yield client
    finally:
        await app.state.engine.dispose()


def _check_startup() -> dict[str, FlowDefinition]:
    """Fail with the same clear message the server would give."""
    settings = get_settings()
    try:
        settings.check()
        return load_flows(settings.flows_dir)
    except FlowLoadError as error:
        for line in error.problems:
            typer.echo(line, err=True)
        raise typer.Exit(1) from error
    except ConfigurationError as error:
        typer.echo(f"configuration error: {error}", err=True)
        raise typer.Exit(1) from error


def main() -> None:
    """Entry point of the `rimay` console script."""
    sys.exit(app())


if __name__ == "__main__":
    main()
