"""Case pages: the queue, one case (recordings, answers, notes, timeline) and the staff's actions on it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from app.cases.deps import CasesDep
from app.cases.errors import CaseNotFound
from app.cases.models import Case, CaseStatus
from app.cases.repository import QueueFilter
from app.cases.service import MAX_TEXT, CaseService
from app.db.base import utcnow
from app.deps import SessionDep
from app.recordings.models import RecordingStatus
from app.recordings.service import recording_path
from app.staff.sessions import SignedIn
from app.web.deps import CurrentManager
from app.web.pages import WebRefusal, render

router = APIRouter(prefix="/cases", include_in_schema=False)
PAGE_SIZE: Final = 25
AGES: Final = (1, 3, 7, 30)
"""The queue's "older than N days" choices."""
PUBLIC_ID: Final = re.compile(r"[0-9a-f]{32}")
CaseId = Annotated[int, Path(ge=1, le=2**62)]
STATUS_LABELS: Final = {
    CaseStatus.NEW: "Nuevo",
    CaseStatus.IN_PROGRESS: "En curso",
    CaseStatus.ANSWERED: "Respondido",
    CaseStatus.CLOSED: "Cerrado",
}
TIMELINE_LABELS: Final = {
    "case_opened": "Caso abierto",
    "case_viewed": "Visto",
    "case_assigned": "Asignado",
    "note_added": "Nota interna",
    "answered_text": "Respondido por texto",
    "answered_voice": "Respondido por voz",
    "case_closed": "Cerrado",
    "follow_up": "Nueva pregunta de seguimiento",
    "answer_heard": "La persona escuchó la respuesta",
    "feedback_answered": "La persona dijo que la respuesta le sirvió",
    "feedback_follow_up": "La persona pidió seguimiento",
    "reply_by_sms": "La persona pidió la respuesta por SMS",
    "recording_stored": "Grabación descargada",
    "recording_played": "Grabación escuchada",
    "answer_sms_sent": "Respuesta enviada por SMS",
    "case_auto_closed": "Cerrado por inactividad",
}


# ---------------------------------------------------------------------- the queue


def _queue_filter(status: str, language: str, topic: str, channel: str, age_days: str) -> QueueFilter:
    """The filter the query asks for; an unknown status or age is refused, not silently ignored."""
    age = int(age_days) if age_days.isdigit() and len(age_days) < 4 else -1 if age_days else 0
    if status not in ("", "all", *CaseStatus) or (age and age not in AGES):
        raise WebRefusal(400, "Filtro no válido", "Ese filtro no existe. Vuelva a la lista de casos.")
    return QueueFilter(
        status=status if status not in ("", "all") else None,
        language=language or None,
        topic=topic or None,
        channel=channel or None,
        older_than=utcnow() - timedelta(days=age) if age else None,
        open_only=status == "",
    )


@router.get("", response_class=HTMLResponse)
async def queue(
    request: Request,
    cases: CasesDep,
    signed_in: CurrentManager,
    status: Annotated[str, Query(max_length=16)] = "",
    language: Annotated[str, Query(max_length=16)] = "",
    topic: Annotated[str, Query(max_length=32)] = "",
    channel: Annotated[str, Query(max_length=8)] = "",
    age: Annotated[str, Query(max_length=4)] = "",  # the form sends "" for "any age"
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """Cases oldest first, filtered, with counts per status, PAGE_SIZE a page."""
    given = _queue_filter(status, language, topic, channel, age)
    repo = cases.cases
    total = await repo.count(given)
    rows = await repo.queue(given, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    chosen = {
        "status": status,
        "language": language,
        "topic": topic,
        "channel": channel,
        "age": int(age) if age else "",
    }

    def page_url(number: int) -> str:
        return "/cases?" + urlencode({**{k: v for k, v in chosen.items() if v}, "page": number})

    return render(
        request,
        "cases.html",
        signed_in=signed_in,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        page_url=page_url,
        counts=await repo.counts_by_status(given),
        chosen=chosen,
        values=await repo.filter_values(),
        emails=await repo.staff_emails({c.assigned_to for c in rows if c.assigned_to is not None}),
        recordings=await repo.recording_states([c.id for c in rows]),
        ages=AGES,
        labels=STATUS_LABELS,
        age_of=_age_of,
    )


def _age_of(created_at: datetime) -> str:
    """A short age such as "5 min", "3 h" or "2 d"."""
    minutes = int((utcnow() - created_at).total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    return f"{minutes // 60} h" if minutes < 24 * 60 else f"{minutes // (24 * 60)} d"


# ---------------------------------------------------------------------- one case


async def load_case(cases: CaseService, case_id: int) -> Case:
    """The case, or the "not found" page."""
    try:
        return await cases.get(case_id)
    except CaseNotFound as error:
        raise WebRefusal(404, "Caso no encontrado", "Ese caso no existe (o ya fue borrado).") from error


@router.get("/{case_id}", response_class=HTMLResponse)
async def case_page(
    request: Request, case_id: CaseId, db: SessionDep, cases: CasesDep, signed_in: CurrentManager
) -> Response:
    """Everything about one case; looking at it is in the audit log."""
    case = await load_case(cases, case_id)
    await cases.viewed(case, signed_in.user)
    await db.commit()
    return await render_case(request, cases, case, signed_in)


async def render_case(
    request: Request,
    cases: CaseService,
    case: Case,
    signed_in: SignedIn,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    repo = cases.cases
    answers, notes = await repo.answers(case.id), await repo.notes(case.id)
    authors = {case.assigned_to, *(a.author_id for a in answers), *(n.author_id for n in notes)}
    return render(
        request,
        "case.html",
        signed_in=signed_in,
        status=status,
        error=error,
        case=case,
        messages=await repo.messages(case.id),
        recordings=await repo.recordings(case.id),
        answers=answers,
        notes=notes,
        timeline=await repo.timeline(case.id),
        emails=await repo.staff_emails({author for author in authors if author is not None}),
        labels=STATUS_LABELS,
        events=TIMELINE_LABELS,
        stored=RecordingStatus.STORED,
        text_heard=await cases.text_heard(case),
        by_sms=await cases.reaches_by_sms(case),
        max_text=MAX_TEXT,
        max_bytes=cases.settings.answer_upload_max_bytes,
    )


@router.get("/{case_id}/recordings/{public_id}")
async def recording(
    request: Request, case_id: CaseId, public_id: str, cases: CasesDep, signed_in: CurrentManager
) -> Response:
    """The caller's recording, to signed-in staff only; never another case's, never a pending one."""
    found = await cases.cases.stored_recording(case_id, public_id) if PUBLIC_ID.fullmatch(public_id) else None
    path = recording_path(cases.settings, public_id) if found is not None else None
    if found is None or path is None or not path.is_file():
        raise WebRefusal(404, "Grabación no disponible", "Esa grabación no existe o aún no se descargó.")
    if request.headers.get("range", "bytes=0-").startswith("bytes=0-"):
        # Who listened is audited once per playing, not for every range the player asks for later.
        await cases.audit.record(signed_in.user, "recording_played", case_id=case_id)
        await cases.db.commit()
    return FileResponse(
        path, media_type=found.media_type or "audio/mpeg", headers={"Cache-Control": "no-store"}
    )


@router.get("/{case_id}/answers/{answer_id}/audio")
async def answer_audio(
    case_id: CaseId, answer_id: CaseId, cases: CasesDep, signed_in: CurrentManager
) -> Response:
    """A voice answer of this case, to signed-in staff only."""
    answer = await cases.cases.answer(answer_id)
    if answer is None or answer.case_id != case_id or answer.audio_id is None:
        raise WebRefusal(404, "Audio no disponible", "Esa respuesta no tiene audio en este caso.")
    path = cases.audio_path(answer)
    if not path.is_file():
        raise WebRefusal(404, "Audio no disponible", "El archivo de esa respuesta ya no existe.")
    return FileResponse(
        path, media_type=answer.media_type or "audio/mpeg", headers={"Cache-Control": "no-store"}
    )
