"""Signing in and out: password, then a TOTP code when the account has one; throttled and audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.audit.service import AuditAction
from app.deps import SessionDep
from app.staff.errors import LoginFailed
from app.staff.login import MAX_FAILURES, delay_for
from app.staff.models import Role, StaffUser
from app.web.csrf import LOGIN_COOKIE
from app.web.deps import (
    PendingStaff,
    WebDep,
    actor_for,
    audit,
    check_csrf,
    check_login_csrf,
    client_ip,
)
from app.web.pages import HOME, SESSION_COOKIE, WebRefusal, redirect, render

router = APIRouter(include_in_schema=False)
WRONG_LOGIN = "Correo o contraseña incorrectos."
WRONG_CODE = "Código incorrecto o ya usado. Espere el siguiente código e intente de nuevo."


class TooManyAttempts(WebRefusal):
    """Too many failures for this account or address in the window."""

    def __init__(self) -> None:
        super().__init__(
            429,
            "Demasiados intentos",
            "Hubo demasiados intentos fallidos. Espere 15 minutos antes de intentar de nuevo.",
        )


def _login_page(request: Request, web: WebDep, *, error: str | None = None, status: int = 200) -> Response:
    token = web.csrf.new_login_token()
    response = render(request, "login.html", status=status, csrf_token=token, error=error)
    response.set_cookie(
        LOGIN_COOKIE, token, path="/login", httponly=True, samesite="strict", secure=web.secure_cookies
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, web: WebDep) -> Response:
    """The sign-in form."""
    return _login_page(request, web)


def _needs_code(user: StaffUser) -> bool:
    return user.totp_confirmed_at is not None or user.role == Role.ADMIN


@router.post("/login", dependencies=[Depends(check_login_csrf)])
async def login(
    request: Request,
    db: SessionDep,
    web: WebDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """Check the password; go on to the code, the enrolment, or home."""
    guard, ip = web.guard(db), client_ip(request)
    failures = await guard.failures(email, ip)
    if failures >= MAX_FAILURES:
        await web.sleep(delay_for(failures))
        raise TooManyAttempts
    staff = web.staff(db)
    try:
        user = await staff.check_password(email, password)
    except LoginFailed:
        await guard.failed(email, ip)
        actor = actor_for(await staff.find(email))
        await audit(db).record(actor, AuditAction.LOGIN_FAILED, detail="password")
        await db.commit()
        await web.sleep(delay_for(failures + 1))
        return _login_page(request, web, error=WRONG_LOGIN, status=401)
    sessions = web.sessions(db)
    done = not _needs_code(user)
    token = await sessions.start(user, second_factor_done=done, replacing=request.cookies.get(SESSION_COOKIE))
    if done:
        user.last_login_at = sessions.clock()
        await audit(db).record(user, AuditAction.LOGIN_OK)
    await db.commit()
    target = HOME if done else "/login/totp" if user.totp_confirmed_at else "/account/totp"
    response = redirect(target)
    web.set_session_cookie(response, token)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.get("/login/totp", response_class=HTMLResponse)
async def code_form(request: Request, signed_in: PendingStaff) -> Response:
    """Ask for the authenticator's code."""
    if signed_in.complete:
        return redirect(HOME)
    if signed_in.user.totp_confirmed_at is None:
        return redirect("/account/totp")
    return render(request, "totp.html", signed_in=signed_in)


@router.post("/login/totp", dependencies=[Depends(check_csrf)])
async def check_code(
    request: Request,
    db: SessionDep,
    web: WebDep,
    signed_in: PendingStaff,
    code: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Finish the login with a current, unused code."""
    user, ip = signed_in.user, client_ip(request)
    if signed_in.complete or user.totp_confirmed_at is None:
        return redirect(HOME)
    guard = web.guard(db)
    failures = await guard.failures(user.email, ip)
    if failures >= MAX_FAILURES:
        await web.sleep(delay_for(failures))
        raise TooManyAttempts
    try:
        await web.staff(db).check_code(user, code)
    except LoginFailed:
        await guard.failed(user.email, ip)
        await audit(db).record(user, AuditAction.LOGIN_FAILED, detail="totp code")
        await db.commit()
        await web.sleep(delay_for(failures + 1))
        return render(request, "totp.html", signed_in=signed_in, error=WRONG_CODE, status=401)
    await web.sessions(db).complete(signed_in)
    await audit(db).record(user, AuditAction.LOGIN_OK)
    await db.commit()
    return redirect(HOME)


@router.post("/logout", dependencies=[Depends(check_csrf)])
async def logout(request: Request, db: SessionDep, web: WebDep, signed_in: PendingStaff) -> Response:
    """End the session: the row is deleted and the cookie dropped."""
    await web.sessions(db).end(request.cookies.get(SESSION_COOKIE))
    await audit(db).record(signed_in.user, AuditAction.LOGOUT)
    await db.commit()
    response = redirect("/login?m=logged_out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
