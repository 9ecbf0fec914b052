"""The account page and TOTP enrolment (required for admins before anything else works)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.audit.service import AuditAction
from app.deps import SessionDep
from app.staff.errors import LoginFailed
from app.staff.login import MAX_FAILURES, delay_for
from app.web.auth import TooManyAttempts
from app.web.deps import CurrentStaff, PendingStaff, WebDep, audit, check_csrf, client_ip
from app.web.pages import redirect, render

router = APIRouter(include_in_schema=False)


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, signed_in: CurrentStaff) -> Response:
    """Who is signed in, the second factor's state, and the logout button."""
    return render(request, "account.html", signed_in=signed_in)


@router.get("/account/totp", response_class=HTMLResponse)
async def enrolment(request: Request, web: WebDep, db: SessionDep, signed_in: PendingStaff) -> Response:
    """Show the pending seed (as text and an otpauth:// URI), or a button to make one."""
    user = signed_in.user
    if user.totp_confirmed_at is not None:
        return redirect("/account" if signed_in.complete else "/login/totp")
    pending = web.staff(db).pending_enrolment(user)
    return render(request, "enrol.html", signed_in=signed_in, enrolment=pending)


@router.post("/account/totp/start", dependencies=[Depends(check_csrf)])
async def start_enrolment(web: WebDep, db: SessionDep, signed_in: PendingStaff) -> Response:
    """Make a new seed for this account (replacing an unconfirmed one)."""
    if signed_in.user.totp_confirmed_at is None:
        await web.staff(db).start_enrolment(signed_in.user)
        await db.commit()
    return redirect("/account/totp")


@router.post("/account/totp/confirm", dependencies=[Depends(check_csrf)])
async def confirm_enrolment(
    request: Request,
    web: WebDep,
    db: SessionDep,
    signed_in: PendingStaff,
    code: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Confirm the seed with a code from the app; this also completes a pending login."""
    user, ip = signed_in.user, client_ip(request)
    if user.totp_confirmed_at is not None:
        return redirect("/account")
    staff, guard = web.staff(db), web.guard(db)
    failures = await guard.failures(user.email, ip)
    if failures >= MAX_FAILURES:
        await web.sleep(delay_for(failures))
        raise TooManyAttempts
    try:
        await staff.confirm_enrolment(user, code)
    except LoginFailed:
        await guard.failed(user.email, ip)
        await audit(db).record(user, AuditAction.LOGIN_FAILED, detail="totp enrolment code")
        await db.commit()
        await web.sleep(delay_for(failures + 1))
        pending = staff.pending_enrolment(user)
        error = "Código incorrecto. Revise la hora del teléfono y use el código actual."
        return render(request, "enrol.html", signed_in=signed_in, enrolment=pending, error=error, status=400)
    await audit(db).record(user, AuditAction.TOTP_ENROLLED)
    if not signed_in.complete:
        await web.sessions(db).complete(signed_in)
        await audit(db).record(user, AuditAction.LOGIN_OK)
    await db.commit()
    return redirect("/account?m=enrolled")
