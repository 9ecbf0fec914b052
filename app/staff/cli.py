"""`rimay user ...`: create, list and deactivate staff accounts for the web view."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import make_async_engine, make_sessionmaker
from app.settings import get_settings
from app.staff.errors import InvalidStaffInput, StaffNotFound
from app.staff.models import Role, StaffUser
from app.staff.passwords import check_strength
from app.staff.service import StaffSecrets, StaffService

user_app = typer.Typer(help="Staff accounts for the case managers' web view.", no_args_is_help=True)
HEADER = "ID\tEMAIL\tROLE\tACTIVE\tTOTP\tCREATED\tLAST LOGIN"
T = TypeVar("T")


@user_app.command("create")
def create_command(
    email: Annotated[str, typer.Option(help="The staff member's e-mail; it is their login.")],
    role: Annotated[Role, typer.Option(help="manager (cases) or admin (also users).")] = Role.MANAGER,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Create an account; the password is asked twice (hidden) unless given on stdin."""
    password = _read_password(password_stdin)
    try:
        user = _run(lambda db: _service(db).create(email, password, role.value), commit=True)
    except InvalidStaffInput as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"created {user.role} {user.email} (id {user.id})")
    if user.role == Role.ADMIN:
        typer.echo("admins enrol a TOTP authenticator at their first login", err=True)


@user_app.command("list")
def list_command() -> None:
    """Every account with its role and state (never a password or seed)."""
    users = _run(lambda db: _service(db).list())
    if not users:
        typer.echo("no staff accounts")
        return
    typer.echo(HEADER)
    for user in users:
        typer.echo(_row(user))


@user_app.command("deactivate")
def deactivate_command(
    email: Annotated[str, typer.Option(help="The account's e-mail.")],
) -> None:
    """Deactivate an account and end its sessions at once."""
    try:
        user = _run(lambda db: _service(db).deactivate(email), commit=True)
    except StaffNotFound as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"deactivated {user.email}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        return check_strength(password)
    except InvalidStaffInput as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error


def _row(user: StaffUser) -> str:
    totp = "yes" if user.totp_confirmed_at else "no"
    cells = [str(user.id), user.email, user.role, "yes" if user.active else "no", totp]
    return "\t".join([*cells, _when(user.created_at), _when(user.last_login_at)])


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _service(db: AsyncSession) -> StaffService:
    return StaffService(db, StaffSecrets.from_master(get_settings().master_secret))


def _run(work: Callable[[AsyncSession], Awaitable[T]], *, commit: bool = False) -> T:
    async def run() -> T:
        engine = make_async_engine(get_settings().sqlalchemy_url)
        try:
            async with make_sessionmaker(engine)() as db:
                result = await work(db)
                if commit:
                    await db.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())
