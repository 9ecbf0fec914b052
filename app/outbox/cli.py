"""`rimay worker` and `rimay outbox ...`: send queued messages and look after the ones that failed."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.logs import configure_logging
from app.outbox.admin import HEADER, Retry, list_rows, purge_cases, retry_row, run_worker
from app.outbox.models import MessageStatus
from app.settings import ConfigurationError, get_settings

RETRY_REFUSALS = {
    Retry.NOT_FOUND: "outbox {id} does not exist; see `rimay outbox list`",
    Retry.NOT_FAILED: "outbox {id} is not a failed row; nothing changed",
    Retry.NUMBER_GONE: (
        "outbox {id} is a call-back whose number was deleted when it failed; "
        "it cannot be retried (the caller can ring again)"
    ),
}
"""Why `rimay outbox retry` changed nothing."""

outbox_app = typer.Typer(help="The outbox: queued SMS and call-backs.", no_args_is_help=True)


def worker(
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="Seconds between polls.")] = 2.0,
) -> None:
    """Send queued SMS and call-backs through Twilio; stops cleanly on SIGINT/SIGTERM."""
    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        settings.check()
        claimed = asyncio.run(run_worker(settings, once=once, poll=poll))
    except ConfigurationError as error:
        typer.echo(f"configuration error: {error}", err=True)
        raise typer.Exit(1) from error
    if once:
        typer.echo(f"{claimed} message(s) processed")


@outbox_app.command("list")
def list_command(
    status: Annotated[MessageStatus | None, typer.Option(help="Only rows with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many rows, newest first.")] = 50,
) -> None:
    """List queued, sent and failed rows (ids, status, errors; never numbers or bodies)."""
    lines = asyncio.run(list_rows(get_settings(), status, limit))
    typer.echo(HEADER)
    for line in lines:
        typer.echo(line.render())


@outbox_app.command("retry")
def retry_command(
    message_id: Annotated[int, typer.Argument(help="The row id (see `rimay outbox list`).")],
) -> None:
    """Queue a failed row again, with fresh attempts."""
    result = asyncio.run(retry_row(get_settings(), message_id))
    if result != Retry.QUEUED:
        typer.echo(RETRY_REFUSALS[result].format(id=message_id), err=True)
        raise typer.Exit(1)
    typer.echo(f"outbox {message_id} queued again")


def purge() -> None:
    """Delete closed cases past RIMAY_CASE_RETENTION_DAYS, with their recordings and answers."""
    settings = get_settings()
    configure_logging(settings.log_level)
    typer.echo(f"{asyncio.run(purge_cases(settings))} closed case(s) purged")
