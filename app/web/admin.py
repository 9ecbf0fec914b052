"""Admin pages: staff accounts (list, create, deactivate) and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.audit.service import AuditAction
from app.deps import SessionDep
from app.staff.errors import InvalidStaffInput, StaffNotFound
from app.staff.models import Role
from app.staff.passwords import MIN_PASSWORD_LENGTH
from app.staff.sessions import SignedIn
from app.web.deps import CurrentAdmin, WebDep, audit, check_csrf
from app.web.pages import redirect, render

router = APIRouter(prefix="/admin", include_in_schema=False)
ERRORS = {
    "weak_password": f"La contraseña debe tener al menos {MIN_PASSWORD_LENGTH} caracteres.",
    "duplicate_email": "Ya existe una cuenta con ese correo.",
    "invalid_staff_input": "Revise el correo y el rol.",
    "staff_not_found": "Esa cuenta no existe.",
}


async def _users_page(
    request: Request, web: WebDep, db: SessionDep, signed_in: SignedIn, *, error: str | None, status: int
) -> Response:
    users = await web.staff(db).list()
    roles = [role.value for role in Role]
    return render(
        request, "admin_users.html", signed_in=signed_in, users=users, roles=roles, error=error, status=status
    )


@router.get("/users", response_class=HTMLResponse)
async def users(request: Request, web: WebDep, db: SessionDep, signed_in: CurrentAdmin) -> Response:
    """Every account and a form to add one."""
    return await _users_page(request, web, db, signed_in, error=None, status=200)


@router.post("/users", dependencies=[Depends(check_csrf)])
async def create_user(
    request: Request,
    web: WebDep,
    db: SessionDep,
    signed_in: CurrentAdmin,
    email: Annotated[str, Form(max_length=254)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """Create an account with a first password the admin hands over."""
    try:
        user = await web.staff(db).create(email, password, role)
    except InvalidStaffInput as error:  # refused before anything was added
        return await _users_page(request, web, db, signed_in, error=ERRORS[error.code], status=400)
    await audit(db).record(signed_in.user, AuditAction.USER_CREATED, detail=f"{user.email} ({user.role})")
    await db.commit()
    return redirect("/admin/users?m=created")


@router.post("/users/{user_id}/deactivate", dependencies=[Depends(check_csrf)])
async def deactivate_user(
    request: Request, user_id: int, web: WebDep, db: SessionDep, signed_in: CurrentAdmin
) -> Response:
    """Deactivate an account and end its sessions; an admin cannot lock themselves out."""
    if user_id == signed_in.user.id:
        error = "No puede desactivar su propia cuenta."
        return await _users_page(request, web, db, signed_in, error=error, status=400)
    try:
        user = await web.staff(db).deactivate(user_id)
    except StaffNotFound as error:
        return await _users_page(request, web, db, signed_in, error=ERRORS[error.code], status=404)
    await audit(db).record(signed_in.user, AuditAction.USER_DEACTIVATED, detail=user.email)
    await db.commit()
    return redirect("/admin/users?m=deactivated")


@router.get("/audit", response_class=HTMLResponse)
async def audit_log(
    request: Request,
    db: SessionDep,
    signed_in: CurrentAdmin,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """The audit log, newest first, 50 entries a page."""
    log = await audit(db).page(page)
    return render(request, "admin_audit.html", signed_in=signed_in, log=log)
