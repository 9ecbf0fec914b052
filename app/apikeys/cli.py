"""`rimay apikey ...`: issue, list and revoke partner API keys."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer

from app.apikeys.errors import ApiKeyNotFound, InvalidKeyName, UnknownScope
from app.apikeys.models import SCOPES, ApiKey
from app.apikeys.service import ApiKeyService
from app.db.engine import make_async_engine, make_sessionmaker
from app.settings import Settings, get_settings

apikey_app = typer.Typer(help="API keys for partners (the JSON API).", no_args_is_help=True)
HEADER = "PREFIX\tNAME\tSCOPES\tCREATED\tLAST USED\tREVOKED"


@apikey_app.command("create")
def create_command(
    name: Annotated[str, typer.Option(help="Who the key is for, e.g. the agency or NGO.")],
    scope: Annotated[
        list[str], typer.Option("--scope", help=f"Repeat for several; known: {', '.join(SCOPES)}.")
    ],
) -> None:
    """Issue a key and print it once: only its hash is stored."""
    try:
        api_key, key = asyncio.run(_create(get_settings(), name, scope))
    except (UnknownScope, InvalidKeyName) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    typer.echo(f"API key {api_key.prefix} for {api_key.name!r} ({', '.join(api_key.scopes)}):", err=True)
    typer.echo(key)  # alone on stdout, so scripts can capture it
    typer.echo("Store it now: it will not be shown again.", err=True)


@apikey_app.command("list")
def list_command() -> None:
    """Every key with its scopes and use (never a key or its hash)."""
    keys = asyncio.run(_list(get_settings()))
    if not keys:
        typer.echo("no API keys")
        return
    typer.echo(HEADER)
    for api_key in keys:
        typer.echo(_row(api_key))


@apikey_app.command("revoke")
def revoke_command(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (see `rimay apikey list`) or id.")],
) -> None:
    """Revoke a key at once; requests with it get 401 from now on."""
    try:
        api_key = asyncio.run(_revoke(get_settings(), prefix))
    except ApiKeyNotFound as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    typer.echo(f"API key {api_key.prefix} ({api_key.name}) revoked at {_when(api_key.revoked_at)}")


def _row(api_key: ApiKey) -> str:
    cells = [api_key.prefix, api_key.name, ",".join(api_key.scopes), _when(api_key.created_at)]
    return "\t".join([*cells, _when(api_key.last_used_at), _when(api_key.revoked_at)])


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


async def _create(settings: Settings, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    engine = make_async_engine(settings.sqlalchemy_url)
    try:
        async with make_sessionmaker(engine)() as db:
            created = await ApiKeyService(db).create(name, scopes)
            await db.commit()
            return created
    finally:
        await engine.dispose()


async def _list(settings: Settings) -> list[ApiKey]:
    engine = make_async_engine(settings.sqlalchemy_url)
    try:
        async with make_sessionmaker(engine)() as db:
            return await ApiKeyService(db).list()
    finally:
        await engine.dispose()


async def _revoke(settings: Settings, prefix: str) -> ApiKey:
    engine = make_async_engine(settings.sqlalchemy_url)
    try:
        async with make_sessionmaker(engine)() as db:
            api_key = await ApiKeyService(db).revoke(prefix)
            await db.commit()
            return api_key
    finally:
        await engine.dispose()
