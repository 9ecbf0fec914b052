"""`rimay broadcast ...`: send community news to subscribers and see how it went."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.broadcasts.service import BroadcastReport, BroadcastService, BroadcastTooLong, QueuedBroadcast
from app.contacts.crypto import ContactCipher
from app.contacts.service import ContactService
from app.db.engine import make_async_engine, make_sessionmaker
from app.outbox.service import Outbox
from app.settings import Settings, get_settings

broadcast_app = typer.Typer(help="News broadcasts to subscribers, by SMS.", no_args_is_help=True)


@broadcast_app.command("create")
def create_command(
    text: Annotated[
        list[str], typer.Option("--text", help="LANG=TEXT, once per language (e.g. es=..., qu=...).")
    ],
    community: Annotated[str | None, typer.Option(help="Only subscribers of this community.")] = None,
) -> None:
    """Queue a broadcast for every subscriber in their language; `rimay worker` sends it."""
    texts = dict(_split(item) for item in text)
    try:
        report = asyncio.run(_create(get_settings(), texts, community))
    except BroadcastTooLong as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    typer.echo(f"broadcast {report.id} queued for {report.recipients} subscriber(s)")
    # Without this, subscribers in a language given no --text would silently get nothing.
    for language, count in sorted(report.left_out.items()):
        typer.echo(f"left out: {count} subscriber(s) in {language!r}: no --text {language}=...")


@broadcast_app.command("list")
def list_command(limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """The latest broadcasts with queued, sent, delivered and failed counts."""
    for report in asyncio.run(_reports(get_settings(), limit)):
        counts = ", ".join(f"{status} {count}" for status, count in sorted(report.counts.items())) or "none"
        where = report.community or "all communities"
        typer.echo(
            f"{report.id}\t{'/'.join(report.languages)}\t{where}\t{report.recipients} queued\t{counts}"
        )


def _split(item: str) -> tuple[str, str]:
    language, sep, value = item.partition("=")
    if not sep or not language.strip() or not value.strip():
        raise typer.BadParameter(f"expected LANG=TEXT, got {item!r}", param_hint="--text")
    return language.strip(), value.strip()


async def _create(settings: Settings, texts: dict[str, str], community: str | None) -> QueuedBroadcast:
    engine = make_async_engine(settings.sqlalchemy_url)
    try:
        async with make_sessionmaker(engine)() as db:
            contacts = ContactService(db, ContactCipher.from_secret(settings.contact_secret))
            queued = await BroadcastService(db, contacts, Outbox(db, settings)).create(texts, community)
            await db.commit()
            return queued
    finally:
        await engine.dispose()


async def _reports(settings: Settings, limit: int) -> list[BroadcastReport]:
    engine = make_async_engine(settings.sqlalchemy_url)
    try:
        async with make_sessionmaker(engine)() as db:
            contacts = ContactService(db, ContactCipher.from_secret(settings.contact_secret))
            return await BroadcastService(db, contacts, Outbox(db, settings)).reports(limit)
    finally:
        await engine.dispose()
