"""Admin pages for partner API keys: list, issue (the key is shown once) and revoke."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from app.apikeys.errors import InvalidKeyName, UnknownScope
from app.apikeys.models import NAME_MAX_LENGTH, SCOPES
from app.apikeys.repository import ApiKeyRepository
from app.apikeys.service import ApiKeyService
from app.deps import SessionDep
from app.staff.sessions import SignedIn
from app.web.deps import CurrentAdmin, audit, check_csrf
from app.web.pages import WebRefusal, redirect, render

router = APIRouter(prefix="/admin", include_in_schema=False)

KEY_CREATED: Final = "api_key_created"
KEY_REVOKED: Final = "api_key_revoked"
MAX_ID: Final = 2**31 - 1
"""Ids past this are no key; refusing them keeps PostgreSQL's integer column from overflowing."""
NOTICES: Final = {"revoked": "Clave revocada: desde ahora se rechaza."}
"""This page's notices by short code, so no free text travels in a link."""
SCOPE_LABELS: Final = {
    "results:read": "Leer resultados de encuestas (Flow Results)",
    "stats:read": "Leer estadísticas",
}


class KeyNotFound(WebRefusal):
    """No key has this id."""

    def __init__(self) -> None:
        super().__init__(404, "Clave no encontrada", "Esa clave de API no existe.")


async def _keys_page(
    request: Request,
    db: SessionDep,
    signed_in: SignedIn,
    *,
    error: str | None = None,
    status: int = 200,
    **context: object,
) -> Response:
    keys = await ApiKeyService(db).list()
    notice = NOTICES.get(request.query_params.get("m", ""))
    labels = {scope: SCOPE_LABELS.get(scope, scope) for scope in SCOPES}
    return render(
        request,
        "admin_keys.html",
        signed_in=signed_in,
        keys=keys,
        scopes=labels,
        name_max=NAME_MAX_LENGTH,
        error=error,
        status=status,
        **({"notice": notice} if notice else {}),
        **context,
    )


@router.get("/keys", response_class=HTMLResponse)
async def keys(request: Request, db: SessionDep, signed_in: CurrentAdmin) -> Response:
    """Every key (never the key or its hash) and a form to issue one."""
    return await _keys_page(request, db, signed_in)


@router.post("/keys", dependencies=[Depends(check_csrf)])
async def create_key(
    request: Request,
    db: SessionDep,
    signed_in: CurrentAdmin,
    name: Annotated[str, Form(max_length=1000)] = "",
    scope: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Issue a key and show it on this response only: the database keeps just its SHA-256."""
    try:
        api_key, key = await ApiKeyService(db).create(name, scope or [])
    except InvalidKeyName:
        error = f"Escriba para quién es la clave (de 1 a {NAME_MAX_LENGTH} caracteres)."
        return await _keys_page(request, db, signed_in, error=error, status=422)
    except UnknownScope:
        return await _keys_page(request, db, signed_in, error=_scope_error(scope or []), status=422)
    detail = f"{api_key.prefix} {api_key.name} ({', '.join(api_key.scopes)})"
    await audit(db).record(signed_in.user, KEY_CREATED, detail=detail)
    await db.commit()
    # Rendered, not redirected: the key must not travel in a URL or be kept anywhere to show later.
    return await _keys_page(request, db, signed_in, status=201, new_key=key, new_api_key=api_key)


@router.post("/keys/{key_id}/revoke", dependencies=[Depends(check_csrf)])
async def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=MAX_ID)], db: SessionDep, signed_in: CurrentAdmin
) -> Response:
    """Revoke a key at once; revoking it again changes nothing."""
    # By id only: the service would also take an all-digit prefix for the same text.
    found = await ApiKeyRepository(db).by_id(key_id)
    if found is None:
        raise KeyNotFound
    if not found.revoked:
        api_key = await ApiKeyService(db).revoke(found.prefix)
        await audit(db).record(signed_in.user, KEY_REVOKED, detail=f"{api_key.prefix} {api_key.name}")
        await db.commit()
    return redirect("/admin/keys?m=revoked")


def _scope_error(asked: list[str]) -> str:
    known = ", ".join(SCOPES)
    unknown = sorted({scope[:40] for scope in asked if scope not in SCOPES})
    if unknown:  # a few, cut short: the message echoes what was typed, not an arbitrary payload
        return f"Permiso desconocido: {', '.join(unknown[:3])}. Los permisos posibles son: {known}."
    return f"Elija al menos un permiso ({known})."
