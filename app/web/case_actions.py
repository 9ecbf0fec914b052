"""The staff's actions on a case: assign, note, answer by text or voice, close; each with CSRF and version."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.cases.deps import CasesDep
from app.cases.errors import CaseChanged, CaseClosed, InvalidAnswer
from app.cases.models import Case, ReplyBy
from app.cases.service import MAX_TEXT, CaseService
from app.deps import SessionDep, SettingsDep
from app.staff.sessions import SignedIn
from app.web.cases import CaseId, load_case, render_case
from app.web.csrf import FIELD
from app.web.deps import CurrentManager, WebDep, check_csrf
from app.web.pages import CsrfRefused, WebRefusal, redirect

router = APIRouter(prefix="/cases", include_in_schema=False)
CHUNK: Final = 64 * 1024
FORM_OVERHEAD: Final = 64 * 1024
"""Room for the multipart headers and small fields around an uploaded voice answer."""


class UploadTooLarge(Exception):
    """The request body passed the upload limit; it was not read further."""


def _version(raw: str) -> int:
    """The case version the form was rendered with."""
    if not raw.isdigit() or len(raw) > 12:
        raise WebRefusal(400, "Formulario incompleto", "Al formulario le falta la versión del caso.")
    return int(raw)


def _explain(error: CaseChanged | CaseClosed | InvalidAnswer, max_bytes: int) -> str:
    """The refusal in the staff's language; the service's own words when no translation fits."""
    reason = str(error)
    if isinstance(error, CaseChanged):
        return (
            "El caso cambió desde que lo abrió (otra persona actuó en él). "
            "No se guardó nada: revíselo de nuevo."
        )
    if isinstance(error, CaseClosed):
        return "El caso está cerrado. No se guardó nada."
    for word, text in (
        (
            "read aloud",
            "Esta persona escuchará la respuesta por teléfono y la línea no puede leer un texto en su "
            "idioma. No se guardó nada: grabe una respuesta de voz.",
        ),
        ("empty", "La respuesta o nota está vacía. No se guardó nada."),
        ("longer", f"El texto tiene más de {MAX_TEXT} caracteres. No se guardó nada."),
        ("larger", f"El archivo pasa el máximo de {max_bytes // 1_000_000} MB. No se guardó nada."),
        ("not audio", "El archivo no es un audio que se pueda reproducir. No se guardó nada."),
    ):
        if word in reason:
            return text
    return f"No se guardó nada: {reason}"


async def _act(
    request: Request,
    db: SessionDep,
    cases: CaseService,
    case_id: int,
    signed_in: SignedIn,
    action: Callable[[Case], Awaitable[object]],
    done: str,
) -> Response:
    """Run an action and commit it, or roll everything back and say why (409 changed, 422 refused)."""
    case = await load_case(cases, case_id)
    try:
        await action(case)
    except (CaseChanged, CaseClosed, InvalidAnswer) as error:
        await db.rollback()
        await db.refresh(signed_in.session)  # the rollback expired them, and the page shows them
        await db.refresh(signed_in.user)
        fresh = await load_case(cases, case_id)
        status = 409 if isinstance(error, CaseChanged) else 422
        message = _explain(error, cases.settings.answer_upload_max_bytes)
        return await render_case(request, cases, fresh, signed_in, error=message, status=status)
    sms = case.reply_by == ReplyBy.SMS and done == "answered"
    await db.commit()
    return redirect(f"/cases/{case_id}?m={done}_sms" if sms else f"/cases/{case_id}?m={done}")


Version = Annotated[str, Form(max_length=16)]
Text = Annotated[str, Form()]  # lengths are the service's to judge, with a message the manager can read


@router.post("/{case_id}/assign", dependencies=[Depends(check_csrf)])
async def assign(
    request: Request,
    case_id: CaseId,
    db: SessionDep,
    cases: CasesDep,
    signed_in: CurrentManager,
    version: Version = "",
) -> Response:
    """Take the case."""
    number = _version(version)
    return await _act(
        request,
        db,
        cases,
        case_id,
        signed_in,
        lambda case: cases.assign(case, signed_in.user, number),
        "assigned",
    )


@router.post("/{case_id}/notes", dependencies=[Depends(check_csrf)])
async def add_note(
    request: Request,
    case_id: CaseId,
    db: SessionDep,
    cases: CasesDep,
    signed_in: CurrentManager,
    version: Version = "",
    text: Text = "",
) -> Response:
    """An internal note (notes do not change the case, so any version is fine)."""
    _version(version)
    return await _act(
        request, db, cases, case_id, signed_in, lambda case: cases.note(case, signed_in.user, text), "noted"
    )


@router.post("/{case_id}/answer/text", dependencies=[Depends(check_csrf)])
async def answer_text(
    request: Request,
    case_id: CaseId,
    db: SessionDep,
    cases: CasesDep,
    signed_in: CurrentManager,
    version: Version = "",
    text: Text = "",
) -> Response:
    """A written answer."""
    number = _version(version)
    return await _act(
        request,
        db,
        cases,
        case_id,
        signed_in,
        lambda case: cases.answer_text(case, signed_in.user, text, number),
        "answered",
    )


@router.post("/{case_id}/close", dependencies=[Depends(check_csrf)])
async def close(
    request: Request,
    case_id: CaseId,
    db: SessionDep,
    cases: CasesDep,
    signed_in: CurrentManager,
    version: Version = "",
) -> Response:
    """Close the case (her stored number goes once no open case needs it)."""
    number = _version(version)
    return await _act(
        request,
        db,
        cases,
        case_id,
        signed_in,
        lambda case: cases.close(case, signed_in.user, number),
        "closed",
    )


@router.post("/{case_id}/answer/voice")
async def answer_voice(
    request: Request,
    case_id: CaseId,
    db: SessionDep,
    cases: CasesDep,
    settings: SettingsDep,
    web: WebDep,
    signed_in: CurrentManager,
) -> Response:
    """A voice answer, uploaded or recorded in the browser; the body is read only up to the limit."""
    limit = settings.answer_upload_max_bytes
    try:
        form = await _bounded_form(request, limit + FORM_OVERHEAD)
    except UploadTooLarge:
        return await _act(request, db, cases, case_id, signed_in, _refuse(_too_large(limit)), "answered")
    try:
        token = form.get(FIELD)
        if not web.csrf.session_token_ok(signed_in.session.id, token if isinstance(token, str) else None):
            raise CsrfRefused
        raw_version, upload = form.get("version"), form.get("audio")
        number = _version(raw_version if isinstance(raw_version, str) else "")
        data = await _read_upload(upload, limit) if isinstance(upload, UploadFile) else b""
    except UploadTooLarge:
        return await _act(request, db, cases, case_id, signed_in, _refuse(_too_large(limit)), "answered")
    finally:
        await form.close()
    return await _act(
        request,
        db,
        cases,
        case_id,
        signed_in,
        lambda case: cases.answer_voice(case, signed_in.user, data, number),
        "answered",
    )


def _too_large(limit: int) -> InvalidAnswer:
    return InvalidAnswer(f"the file is larger than {limit} bytes")


def _refuse(error: InvalidAnswer) -> Callable[[Case], Awaitable[object]]:
    """An action that only refuses, so a refusal found before the service is shown the same way."""

    async def refuse(case: Case) -> object:
        raise error

    return refuse


async def _bounded_form(request: Request, limit: int) -> FormData:
    """Parse a multipart form, giving up as soon as the body passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise WebRefusal(400, "Formulario no válido", "Envíe el audio con el formulario de la página.")

    async def body() -> AsyncGenerator[bytes, None]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise UploadTooLarge
            yield chunk

    try:
        return await MultiPartParser(request.headers, body(), max_files=1, max_fields=4).parse()
    except MultiPartException as error:
        raise WebRefusal(400, "Formulario no válido", "El formulario llegó incompleto.") from error


async def _read_upload(upload: UploadFile, limit: int) -> bytes:
    """The file's bytes, read in chunks; more than ``limit`` is refused without reading the rest."""
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise UploadTooLarge
        parts.append(chunk)
    return b"".join(parts)
