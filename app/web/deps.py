"""Web-view dependencies: who is signed in (`CurrentStaff`, `CurrentManager`, `CurrentAdmin`) and CSRF."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import AuditService
from app.deps import SessionDep
from app.settings import Settings
from app.staff.errors import SessionExpired
from app.staff.login import LoginGuard
from app.staff.models import Role, StaffUser
from app.staff.service import StaffSecrets, StaffService
from app.staff.sessions import SignedIn, StaffSessions
from app.throttle.service import ThrottleService
from app.web.csrf import FIELD, LOGIN_COOKIE, CsrfTokens
from app.web.pages import SESSION_COOKIE, CsrfRefused, Forbidden, LoginRedirect


@dataclass
class WebState:
    """What the web view keeps on ``app.state.web``; tests may swap ``sleep`` to skip login delays."""

    secrets: StaffSecrets
    csrf: CsrfTokens
    idle: timedelta
    lifetime: timedelta
    secure_cookies: bool
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    @classmethod
    def from_settings(cls, settings: Settings) -> WebState:
        """Keys from the master secret; cookie and session policy from the settings."""
        return cls(
            secrets=StaffSecrets.from_master(settings.master_secret),
            csrf=CsrfTokens(settings.master_secret),
            idle=timedelta(minutes=settings.staff_session_idle_minutes),
            lifetime=timedelta(hours=settings.staff_session_max_hours),
            secure_cookies=settings.public_base_url.startswith("https://"),
        )

    def staff(self, db: AsyncSession) -> StaffService:
        """Accounts in this unit of work."""
        return StaffService(db, self.secrets)

    def sessions(self, db: AsyncSession) -> StaffSessions:
        """Sessions in this unit of work."""
        return StaffSessions(db, idle=self.idle, lifetime=self.lifetime)

    def guard(self, db: AsyncSession) -> LoginGuard:
        """Login throttling in this unit of work."""
        return LoginGuard(ThrottleService(db, self.secrets.throttle_keys))

    def set_session_cookie(self, response: Response, token: str) -> None:
        """The session cookie: HttpOnly, SameSite=Lax, Secure over https, gone when the browser closes."""
        response.set_cookie(
            SESSION_COOKIE, token, path="/", httponly=True, samesite="lax", secure=self.secure_cookies
        )


async def _web(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


WebDep = Annotated[WebState, Depends(_web)]


def audit(db: AsyncSession) -> AuditService:
    """The audit log in this unit of work."""
    return AuditService(db)


def client_ip(request: Request) -> str:
    """The client's address (uvicorn resolves trusted proxy headers)."""
    return request.client.host if request.client else "unknown"


async def _signed_in(request: Request, db: SessionDep, web: WebDep) -> SignedIn:
    token = request.cookies.get(SESSION_COOKIE)
    try:
        signed_in = await web.sessions(db).resolve(token)
    except SessionExpired as error:
        await db.commit()  # the expired row is deleted for good
        raise LoginRedirect("/login?m=expired" if token else "/login", clear=bool(token)) from error
    await db.commit()
    return signed_in


PendingStaff = Annotated[SignedIn, Depends(_signed_in)]
"""A right password, though a TOTP code or enrolment may still be owed: only the login steps take it."""


async def _staff(signed_in: PendingStaff) -> SignedIn:
    confirmed = signed_in.user.totp_confirmed_at is not None
    if not signed_in.complete:
        raise LoginRedirect("/login/totp" if confirmed else "/account/totp")
    if signed_in.user.role == Role.ADMIN and not confirmed:  # e.g. a manager promoted mid-session
        raise LoginRedirect("/account/totp")
    return signed_in


CurrentStaff = Annotated[SignedIn, Depends(_staff)]
"""Fully signed in, any role."""


async def _manager(signed_in: CurrentStaff) -> SignedIn:
    if signed_in.user.role not in (Role.MANAGER, Role.ADMIN):
        raise Forbidden
    return signed_in


CurrentManager = Annotated[SignedIn, Depends(_manager)]
"""Fully signed in and allowed to work cases (managers and admins)."""


async def _admin(signed_in: CurrentStaff) -> SignedIn:
    if signed_in.user.role != Role.ADMIN:
        raise Forbidden
    return signed_in


CurrentAdmin = Annotated[SignedIn, Depends(_admin)]
"""Fully signed in as an admin."""


async def check_csrf(request: Request, signed_in: PendingStaff, web: WebDep) -> None:
    """Refuse a form without this session's token; use as ``dependencies=[Depends(check_csrf)]``."""
    form = await request.form()
    token = form.get(FIELD)
    if not web.csrf.session_token_ok(signed_in.session.id, token if isinstance(token, str) else None):
        raise CsrfRefused


async def check_login_csrf(request: Request, web: WebDep) -> None:
    """Refuse a login form whose token does not repeat the signed cookie set with the form."""
    form = await request.form()
    token = form.get(FIELD)
    if not web.csrf.login_token_ok(
        request.cookies.get(LOGIN_COOKIE), token if isinstance(token, str) else None
    ):
        raise CsrfRefused


def actor_for(user: StaffUser | None) -> StaffUser | str:
    """The audit actor of a login attempt: the account if one matched, never the typed address."""
    return user if user is not None else "unknown"
